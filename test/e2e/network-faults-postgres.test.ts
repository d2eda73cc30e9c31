import t from 'tap'
import { namespacesUnavailable } from '../fixtures/netns.js'
import { recoveryMs, startFaultLab, summarise, workload, type Lab } from '../fixtures/fault-lab.js'

// Network faults between the service and PostgreSQL, for real (docs/contract.md,
// "Network faults"; figures in docs/operations.md, "Network faults"): the real
// server in a namespace of its own, PostgreSQL across a veth link that this test
// delays (a delaying forwarder), drops packets on (nftables numgen), partitions
// (nftables drop) and cuts (link down), under a bounded load of writes, reads,
// logins and liveness probes.

const unavailable = namespacesUnavailable()
const WAIT_LIMIT_MS = 5000
const RECOVERY_LIMIT_MS = 5000

interface Scenario {
  name: string
  apply: (lab: Lab) => Promise<void>
  heal: (lab: Lab) => Promise<void>
  durationMs: number
  /** PostgreSQL is unreachable: requests that need it must get 503. */
  outage: boolean
}

const SCENARIOS: Scenario[] = [
  { name: '300 ms added each way', apply: (lab) => lab.postgres.delay(300), heal: (lab) => lab.postgres.delay(0), durationMs: 4000, outage: false },
  { name: '30 % packet loss each way', apply: (lab) => lab.postgres.faults.apply('loss', 30), heal: (lab) => lab.postgres.faults.heal(), durationMs: 5000, outage: false },
  { name: 'silent partition', apply: (lab) => lab.postgres.faults.apply('partition'), heal: (lab) => lab.postgres.faults.heal(), durationMs: 6000, outage: true },
  { name: 'link cut', apply: (lab) => lab.postgres.faults.apply('cut'), heal: (lab) => lab.postgres.faults.heal(), durationMs: 4000, outage: true }
]

t.test('PostgreSQL behind a slow, lossy, partitioned and cut link', { skip: unavailable, timeout: 300_000 }, async (t) => {
  const lab = await startFaultLab(t, { redis: false })
  const acknowledged = new Set<string>()

  const baseline = summarise(await workload(lab, 1500, acknowledged), Date.now())
  t.same(Object.keys(baseline.statuses).filter((s) => !/^2/.test(s)), [], `baseline: every answer 2xx (${JSON.stringify(baseline.statuses)})`)

  for (const scenario of SCENARIOS) {
    await t.test(scenario.name, async (t) => {
      const applied = Date.now()
      await scenario.apply(lab)
      const samples = await workload(lab, scenario.durationMs, acknowledged)
      await scenario.heal(lab)
      const healed = Date.now()
      const recovered = await recoveryMs(healed, async () =>
        (await lab.http('POST', '/notes', { token: lab.token, body: { title: 'probe' } })).status === 201)
      const summary = summarise(samples, applied)
      t.comment(`${scenario.name}: ${summary.count} requests ${JSON.stringify(summary.statuses)}, worst wait ${summary.worstMs} ms` +
        `${summary.first503Ms !== undefined ? `, first 503 after ${summary.first503Ms} ms` : ''}, writes again ${recovered} ms after healing`)

      t.equal(summary.hung, 0, 'no request left without an answer')
      t.ok(summary.worstMs < WAIT_LIMIT_MS, `no request waited ${WAIT_LIMIT_MS} ms (worst ${summary.worstMs} ms)`)
      t.same(summary.failures, [], 'no 500, no dropped connection: every error is 503 SERVICE_UNAVAILABLE')
      t.ok(samples.filter((s) => s.kind === 'live').every((s) => s.status === 200), 'liveness never depends on the database')
      if (scenario.outage) {
        t.ok(summary.first503Ms !== undefined, 'requests that need the database got 503')
        t.notOk(samples.some((s) => s.kind === 'write' && s.at > applied + 1000 && s.status === 201), 'and no write begun during the outage succeeded')
      } else if (scenario.name.startsWith('300 ms')) {
        t.same(Object.keys(summary.statuses).filter((s) => !/^2/.test(s)), [], 'a slow network is not an outage: every answer 2xx')
      }
      t.ok(recovered !== undefined && recovered < RECOVERY_LIMIT_MS, `writes work again within ${RECOVERY_LIMIT_MS} ms of healing (${recovered} ms)`)
      t.ok(lab.service.running(), 'the process is still running')
    })
  }

  const { rows } = await lab.db.query<{ id: string }>('SELECT id FROM notes WHERE id = ANY($1::uuid[])', [[...acknowledged]])
  const { rows: all } = await lab.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notes')
  t.comment(`writes: ${acknowledged.size} answered 201, ${rows.length} of them found; ${all[0]?.n} notes in all (a write answered 503 may still have committed)`)
  t.equal(rows.length, acknowledged.size, 'every write answered 201 is in the database')

  lab.service.child.kill('SIGTERM')
  const { code } = await lab.service.exited
  t.equal(code, 0, 'and it shuts down cleanly afterwards')
  // Error lines: requests refused for the outage, and handlers that ended after their deadline. Never a 500, never a double answer.
  const errors = lab.service.lines.filter((l) => Number(l.level) >= 50)
  t.same(errors.filter((l) => l.msg === 'request completed' || (l.res as { statusCode?: number } | undefined)?.statusCode === 500), [], 'no 500')
  t.same(errors.filter((l) => (l.err as { code?: string } | undefined)?.code === 'ERR_HTTP_HEADERS_SENT'), [], 'no request answered twice')
  t.ok(lab.service.lines.filter((l) => l.statusCode === 500).length === 0, 'no completion line with 500')
})
