import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t, { type Test } from 'tap'
import { GENEROUS_LIMITS, createTestDatabase, productionEnv } from '../helper.js'
import { ROOT } from '../fixtures/deploy/dockerfile.js'
import { freePort, startNode, waitForLine, waitReady, type NodeProcess } from '../fixtures/deploy/process.js'

// Several replicas of the real entry point (node dist/server.js, production mode)
// on one database, as a Deployment runs them: migrations applied once when they
// start together, a logout on one honoured by the others within a second, a
// rolling restart under load without a failed request, and (with REDIS_URL) one
// rate limit for all of them. Compile dist/ first.

const SERVER = join(ROOT, 'dist', 'server.js')
const REDIS_URL = process.env.REDIS_URL
const MIGRATIONS = readdirSync(join(ROOT, 'migrations')).filter((f) => /^\d+\.do\..+\.sql$/.test(f))

interface Replica { name: string, port: number, base: string, proc: NodeProcess }

async function startReplica (t: Test, name: string, env: Record<string, string>): Promise<Replica> {
  const port = await freePort()
  const proc = startNode(t, [SERVER], { env: { ...env, HOST: '127.0.0.1', PORT: String(port) } })
  return { name, port, base: `http://127.0.0.1:${port}`, proc }
}

async function stopReplica (replica: Replica): Promise<number | null> {
  if (!replica.proc.running()) return (await replica.proc.exited).code
  replica.proc.child.kill('SIGTERM')
  return (await replica.proc.exited).code
}

async function api (replica: Replica, method: string, path: string, options: { token?: string, body?: object } = {}) {
  const headers: Record<string, string> = {}
  if (options.token) headers.authorization = `Bearer ${options.token}`
  if (options.body) headers['content-type'] = 'application/json'
  const res = await fetch(replica.base + path, {
    method,
    headers,
    ...(options.body ? { body: JSON.stringify(options.body) } : {}),
    signal: AbortSignal.timeout(5000)
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
}

const errorLines = (replicas: Replica[]) => replicas.flatMap((r) => r.proc.lines.filter((l) => l.level >= 50).map((l) => ({ replica: r.name, ...l })))

// One database, one set of keys: every replica of a Deployment shares its Secret.
const databaseUrl = await createTestDatabase()
const baseEnv: Record<string, string> = {
  ...(await productionEnv({ DATABASE_URL: databaseUrl })),
  // Four replicas at once on a test server shared with other suites.
  DATABASE_POOL_MAX: '4',
  // Keys of this run only, on a Redis that other runs may share.
  REDIS_KEY_PREFIX: `replicas-test-${randomBytes(4).toString('hex')}:`,
  ...(REDIS_URL ? { REDIS_URL } : {})
}

t.test('replicas started together apply each migration once, and a logout on one is honoured by the others within a second; a rolling restart under load fails no request', async (t) => {
  const env = { ...baseEnv, ...GENEROUS_LIMITS }
  const replicas = await Promise.all(['a', 'b', 'c'].map((name) => startReplica(t, name, env)))
  const readyMs = await Promise.all(replicas.map((r) => waitReady(r.proc, r.port)))
  t.comment(`3 replicas ready in ${Math.max(...readyMs)} ms (started together)`)
  const [a, b, c] = replicas as [Replica, Replica, Replica]

  await t.test('migrations ran once although every replica tried', async (t) => {
    const appliers = replicas.filter((r) => r.proc.lines.some((l) => l.msg === 'database migrations applied'))
    t.equal(appliers.length, 1, 'one replica applied the migrations; the others waited for the lock and found none left')
    const applied = appliers[0]?.proc.lines.find((l) => l.msg === 'database migrations applied')?.migrations as string[]
    t.same(applied.map((p) => p.split('/').at(-1)), MIGRATIONS, 'every migration file, once')
    const db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    t.teardown(() => db.end())
    const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations WHERE version > 0 ORDER BY version')
    t.same(rows.map((r) => Number(r.version)), MIGRATIONS.map((f) => Number(f.split('.')[0])), 'schema_migrations has one row per migration')
    t.same(errorLines(replicas), [], 'no replica logged an error')
  })

  const email = `replica-${randomBytes(4).toString('hex')}@example.test`
  const password = 'correct horse battery staple'

  await t.test('a logout on one replica is refused by the others within a second', async (t) => {
    const registered = await api(a, 'POST', '/auth/register', { body: { email, password } })
    t.equal(registered.status, 201, 'registered on a')
    const login = await api(b, 'POST', '/auth/login', { body: { email, password } })
    t.equal(login.status, 200, 'logged in on b')
    const token = login.body.access_token as string
    for (const r of replicas) t.equal((await api(r, 'GET', '/auth/me', { token })).status, 200, `the token works on ${r.name}`)

    const logout = await api(a, 'POST', '/auth/logout', { token })
    t.equal(logout.status, 204, 'logged out on a')
    const loggedOutAt = Date.now()
    const here = await api(a, 'GET', '/auth/me', { token })
    t.equal(here.body?.code, 'AUTH_TOKEN_REVOKED', 'refused at once where the logout happened')

    const propagation = await Promise.all([b, c].map(async (r) => {
      for (;;) {
        const res = await api(r, 'GET', '/auth/me', { token })
        if (res.status === 401) return { replica: r.name, ms: Date.now() - loggedOutAt, code: res.body.code, auth: res.headers.get('www-authenticate') }
        if (Date.now() - loggedOutAt > 3000) return { replica: r.name, ms: Infinity, code: `still ${res.status}`, auth: null }
        await sleep(10)
      }
    }))
    for (const p of propagation) {
      t.equal(p.code, 'AUTH_TOKEN_REVOKED', `${p.replica} refuses the token as revoked`)
      t.ok(p.ms < 1000, `${p.replica} refused it ${p.ms} ms after the logout (the contract: within one second)`)
      t.match(p.auth, /error="invalid_token"/)
    }
    t.comment(`revocation reached the other replicas in ${propagation.map((p) => `${p.replica} ${p.ms} ms`).join(', ')}`)
  })

  await t.test('a rolling restart under load: a new replica joins, one stops on SIGTERM, no request fails', async (t) => {
    const login = await api(a, 'POST', '/auth/login', { body: { email, password } })
    t.equal(login.status, 200)
    const token = login.body.access_token as string

    // The load balancer's view: a replica gets traffic while its readiness says 200,
    // as a Service's endpoints do (polled here every 100 ms; Kubernetes: periodSeconds).
    const pool: Replica[] = [a, b, c]
    const ready = new Set<Replica>(pool)
    const load = { stopped: false }
    const poller = (async () => {
      while (!load.stopped) {
        await Promise.all(pool.map(async (r) => {
          try {
            const res = await fetch(`${r.base}/health/ready`, { signal: AbortSignal.timeout(500) })
            await res.arrayBuffer()
            if (res.status === 200) ready.add(r)
            else ready.delete(r)
          } catch {
            ready.delete(r)
          }
        }))
        await sleep(100)
      }
    })()

    const served = new Map<string, number>()
    const failures: object[] = []
    let refusedAndRetried = 0
    let next = 0
    const paths = ['/auth/me', '/notes?limit=5']
    async function worker (): Promise<void> {
      while (!load.stopped) {
        const candidates = [...ready]
        const r = candidates[next++ % Math.max(candidates.length, 1)]
        if (!r) { await sleep(5); continue }
        const path = paths[next % paths.length]!
        try {
          const res = await fetch(r.base + path, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
          const body = await res.text()
          if (res.status === 200) served.set(r.name, (served.get(r.name) ?? 0) + 1)
          else failures.push({ replica: r.name, path, status: res.status, body })
        } catch (err) {
          const code = (err as { cause?: { code?: string } }).cause?.code
          // Never reached a server: a client (or a proxy) may retry elsewhere.
          if (code === 'ECONNREFUSED') { refusedAndRetried++; ready.delete(r); continue }
          failures.push({ replica: r.name, path, error: code ?? String(err) })
        }
      }
    }
    const loadStarted = Date.now()
    const workers = Array.from({ length: 8 }, () => worker())

    await sleep(1000)
    // maxSurge 1, maxUnavailable 0: the new replica is ready before an old one stops.
    const d = await startReplica(t, 'd', { ...baseEnv, ...GENEROUS_LIMITS })
    await waitReady(d.proc, d.port)
    pool.push(d)
    await sleep(300)
    const termAt = Date.now()
    c.proc.child.kill('SIGTERM')
    await waitForLine(c.proc, (l) => l.msg === 'shutdown started')
    const { code } = await c.proc.exited
    const exitMs = Date.now() - termAt
    await sleep(700)
    load.stopped = true
    await Promise.all([...workers, poller])
    const seconds = (Date.now() - loadStarted) / 1000

    const total = [...served.values()].reduce((x, y) => x + y, 0)
    t.comment(`${total} requests in ${seconds.toFixed(1)} s (${Math.round(total / seconds)}/s) over ${[...served].map(([n, k]) => `${n}: ${k}`).join(', ')}; ${refusedAndRetried} refused connections retried; c exited ${exitMs} ms after SIGTERM`)
    t.same(failures.slice(0, 5), [], `no request that reached a replica failed (${failures.length} failures)`)
    t.equal(code, 0, 'the stopped replica exits 0')
    t.ok(exitMs < Number(baseEnv.SHUTDOWN_TIMEOUT ?? 10_000), 'within the shutdown deadline')
    t.ok((served.get('c') ?? 0) > 0, 'c served requests before it stopped')
    t.ok((served.get('d') ?? 0) > 0, 'the new replica took traffic')
    t.ok(total > 100, 'the load was real')
    t.same(errorLines([...replicas, d]), [], 'no replica logged an error')
    const codes = await Promise.all([a, b, d].map(stopReplica))
    t.same(codes, [0, 0, 0], 'the others exit 0 on SIGTERM too')
  })
})

t.test('with REDIS_URL one rate limit holds across replicas', {
  skip: REDIS_URL ? false : 'REDIS_URL is not set: rate limits are then per replica by design (docs/contract.md, "Every request")'
}, async (t) => {
  // Fresh counters: the load above counted against the same client address.
  const env = { ...baseEnv, RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '1 minute', REDIS_KEY_PREFIX: `replicas-test-${randomBytes(4).toString('hex')}:` }
  const replicas = await Promise.all(['e', 'f'].map((name) => startReplica(t, name, env)))
  await Promise.all(replicas.map((r) => waitReady(r.proc, r.port)))
  const [e, f] = replicas as [Replica, Replica]
  // Register and login have their own (auth) limit; the global one is measured on /auth/me.
  const email = `limited-${randomBytes(4).toString('hex')}@example.test`
  const password = 'correct horse battery staple'
  t.equal((await api(e, 'POST', '/auth/register', { body: { email, password } })).status, 201)
  const token = (await api(f, 'POST', '/auth/login', { body: { email, password } })).body.access_token as string
  const seen: Array<{ replica: string, status: number, remaining: string | null, code?: string, retryAfter: string | null }> = []
  for (let i = 0; i < 8; i++) {
    const r = replicas[i % 2]!
    const res = await api(r, 'GET', '/auth/me', { token })
    seen.push({ replica: r.name, status: res.status, remaining: res.headers.get('x-ratelimit-remaining'), code: res.body?.code, retryAfter: res.headers.get('retry-after') })
  }
  t.same(seen.slice(0, 5).map((s) => s.status), [200, 200, 200, 200, 200], 'the first 5 requests, alternating replicas, pass the limiter')
  t.same(seen.slice(0, 5).map((s) => s.remaining), ['4', '3', '2', '1', '0'], 'one counter: each replica sees the other\'s requests')
  for (const s of seen.slice(5)) {
    t.equal(s.status, 429, `request on ${s.replica} past the shared limit is refused`)
    t.equal(s.code, 'RATE_LIMITED')
    t.ok(Number(s.retryAfter) > 0, 'with retry-after')
  }
  t.same(errorLines(replicas), [], 'no replica logged an error')
  t.same(await Promise.all(replicas.map(stopReplica)), [0, 0], 'both exit 0 on SIGTERM')
})
