import t from 'tap'
import { namespacesUnavailable } from '../fixtures/netns.js'
import { redisServerMissing } from '../fixtures/redis-server.js'
import { recoveryMs, startFaultLab, summarise, workload, type Lab } from '../fixtures/fault-lab.js'

// Network faults between the service and Redis, for real (docs/contract.md, "Network
// faults"; figures in docs/operations.md, "Network faults"): the real server in a
// namespace of its own, a redis-server of the test's own across a veth link that this
// test delays, drops packets on, partitions and cuts. Redis is not needed to serve:
// every request is answered 2xx, rate limits and login throttling count in process
// meanwhile, and counting returns to Redis once the link heals.

const skip = namespacesUnavailable() || redisServerMissing()
const WAIT_LIMIT_MS = 5000
const RECOVERY_LIMIT_MS = 5000

interface Scenario { name: string, apply: (lab: Lab) => Promise<void>, heal: (lab: Lab) => Promise<void>, durationMs: number }

const redisOf = (lab: Lab) => {
  if (lab.redis === undefined) throw new Error('the lab has no Redis')
  return lab.redis
}

const SCENARIOS: Scenario[] = [
  { name: '300 ms added each way', apply: (lab) => redisOf(lab).delay(300), heal: (lab) => redisOf(lab).delay(0), durationMs: 3000 },
  { name: '30 % packet loss each way', apply: (lab) => redisOf(lab).faults.apply('loss', 30), heal: (lab) => redisOf(lab).faults.heal(), durationMs: 3000 },
  { name: 'silent partition', apply: (lab) => redisOf(lab).faults.apply('partition'), heal: (lab) => redisOf(lab).faults.heal(), durationMs: 3000 },
  { name: 'link cut', apply: (lab) => redisOf(lab).faults.apply('cut'), heal: (lab) => redisOf(lab).faults.heal(), durationMs: 3000 }
]

t.test('Redis behind a slow, lossy, partitioned and cut link', { skip, timeout: 240_000 }, async (t) => {
  const lab = await startFaultLab(t, { redis: true })
  const redis = redisOf(lab)
  const acknowledged = new Set<string>()
  // The service sees the forwarder in its namespace as the client: 127.0.0.1.
  const counterKey = `${redis.prefix}rate-limit:127.0.0.1`
  const countedInRedis = async () => {
    const before = Number(await redis.client.get(counterKey) ?? 0)
    await lab.http('GET', '/auth/me', { token: lab.token })
    return Number(await redis.client.get(counterKey) ?? 0) > before
  }
  t.ok(await countedInRedis(), 'at first, requests are counted in Redis')

  for (const scenario of SCENARIOS) {
    await t.test(scenario.name, async (t) => {
      const applied = Date.now()
      await scenario.apply(lab)
      const samples = await workload(lab, scenario.durationMs, acknowledged)
      await scenario.heal(lab)
      const healed = Date.now()
      const recovered = await recoveryMs(healed, countedInRedis)
      const summary = summarise(samples, applied)
      t.comment(`${scenario.name}: ${summary.count} requests ${JSON.stringify(summary.statuses)}, worst wait ${summary.worstMs} ms, counted in Redis again ${recovered} ms after healing`)

      t.equal(summary.hung, 0, 'no request left without an answer')
      t.ok(summary.worstMs < WAIT_LIMIT_MS, `no request waited ${WAIT_LIMIT_MS} ms (worst ${summary.worstMs} ms)`)
      t.same(Object.keys(summary.statuses).filter((s) => !/^2/.test(s)), [], 'Redis is not needed to serve: every answer 2xx')
      t.ok(samples.filter((s) => s.kind !== 'live').every((s) => typeof s.ratelimit === 'string'), 'and every limited request was still counted (RateLimit present)')
      t.ok(recovered !== undefined && recovered < RECOVERY_LIMIT_MS, `counted in Redis again within ${RECOVERY_LIMIT_MS} ms of healing (${recovered} ms)`)
      t.ok(lab.service.running(), 'the process is still running')
    })
  }

  const { rows } = await lab.db.query<{ id: string }>('SELECT id FROM notes WHERE id = ANY($1::uuid[])', [[...acknowledged]])
  t.comment(`writes: ${acknowledged.size} answered 201, ${rows.length} of them found`)
  t.equal(rows.length, acknowledged.size, 'every write answered 201 is in the database')
  const switches = lab.service.lines.filter((l) => l.dependency === 'redis' && /rate limits are counted in/.test(String(l.msg))).length
  t.ok(switches >= 2, `each outage switched counting to the process and back, logged once per switch (${switches} lines)`)

  lab.service.child.kill('SIGTERM')
  const { code } = await lab.service.exited
  t.equal(code, 0, 'and it shuts down cleanly afterwards')
  t.same(lab.service.lines.filter((l) => Number(l.level) >= 50 && l.dependency !== 'redis'), [], 'the only errors logged are about Redis')
})
