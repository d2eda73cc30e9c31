import { createRequire } from 'node:module'
import { sep } from 'node:path'
import t from 'tap'
import { build } from '../helper.js'

const REDIS_URL = process.env.REDIS_URL
// Nothing listens on port 1: connections are refused at once.
const DEAD_REDIS = 'redis://127.0.0.1:1'

interface LogLine { level: number, msg: string, dependency?: string, suppressed?: number, time: number }

const outageLines = (logs: object[]) =>
  (logs as LogLine[]).filter((l) => l.dependency === 'redis' && l.level >= 50)

// ioredis is CommonJS: once imported, even from an ES module, its files are in require.cache.
const require = createRequire(import.meta.url)
const ioredisLoaded = () => Object.keys(require.cache).some((file) => file.includes(`${sep}node_modules${sep}ioredis${sep}`))

// First in this file: the tests after it load ioredis into this process.
t.test('without REDIS_URL there is no client, readiness does not mention Redis, and ioredis is never loaded', async (t) => {
  const app = await build(t)
  t.equal(app.redis, null)
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  t.same(res.json(), { status: 'ok', checks: { database: 'ok' } })
  t.notOk(ioredisLoaded(), 'ioredis is not in memory')
  const withRedis = await build(t, { env: { REDIS_URL: DEAD_REDIS } })
  t.ok(withRedis.redis)
  t.ok(ioredisLoaded(), 'it is once REDIS_URL makes a client (the check above can see it)')
})

for (const [fallback, expected] of [['local', [404, 404, ...Array(18).fill(429)]], ['open', Array(20).fill(404)]] as const) {
  t.test(`starts, serves and stays ready when Redis is unreachable (RATE_LIMIT_REDIS_FALLBACK=${fallback})`, async (t) => {
    const started = Date.now()
    const app = await build(t, { env: { REDIS_URL: DEAD_REDIS, RATE_LIMIT_MAX: '2', RATE_LIMIT_REDIS_FALLBACK: fallback } })
    t.ok(Date.now() - started < 5000, `built in ${Date.now() - started} ms`)
    t.ok(app.redis)

    const times: number[] = []
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) {
      const begin = process.hrtime.bigint()
      const res = await app.inject({ method: 'GET', url: '/nowhere' })
      times.push(Number(process.hrtime.bigint() - begin) / 1e6)
      statuses.push(res.statusCode)
    }
    t.same(statuses, expected, fallback === 'local' ? 'served, and limited in this process while Redis cannot count' : 'served, never refused while the limit cannot be counted')
    times.sort((a, b) => a - b)
    const p50 = times[10] ?? 0
    t.ok(p50 < 50, `a request costs ${p50.toFixed(1)} ms (median) with Redis down`)
    t.comment(`requests with Redis refused (${fallback}): median ${p50.toFixed(2)} ms, max ${(times.at(-1) ?? 0).toFixed(2)} ms`)

    const ready = await app.inject({ method: 'GET', url: '/health/ready' })
    t.equal(ready.statusCode, 200)
    t.same(ready.json(), { status: 'ok', checks: { database: 'ok', redis: 'error' } })
  })
}

t.test('logs a Redis outage at most once per interval, not per request or attempt', async (t) => {
  const logs: object[] = []
  const app = await build(t, { env: { REDIS_URL: DEAD_REDIS }, logs })
  // Requests and reconnection attempts (every 100 ms to 2 s) keep failing for 6 s.
  const until = Date.now() + 6000
  let requests = 0
  while (Date.now() < until) {
    await app.inject({ method: 'GET', url: '/nowhere' })
    requests++
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const lines = outageLines(logs)
  t.comment(`${requests} requests in 6 s with Redis down: ${lines.length} error lines`)
  t.ok(requests > 50)
  t.equal(lines.length, 2, 'one line at once, the next 5 s later')
  t.match(lines[0], { msg: /Redis is unavailable/, suppressed: 0 })
  t.ok((lines[1]?.suppressed ?? 0) > 0, `the second line counts the ${lines[1]?.suppressed} failures it stood for`)
  // The throttle measures 5 s between its own clock readings; each log line takes its
  // timestamp a moment later, so the two timestamps may differ by a few ms less.
  const gap = (lines[1]?.time ?? 0) - (lines[0]?.time ?? 0)
  t.ok(gap >= 4950, `the second line came ${gap} ms after the first`)
  for (const line of logs as Array<{ msg?: string }>) t.notMatch(String(line.msg), /127\.0\.0\.1:1/, 'the URL is not logged')
})

t.test('with a reachable Redis, readiness reports it and closing the app closes the client', { skip: REDIS_URL ? false : 'REDIS_URL is not set' }, async (t) => {
  const app = await build(t, { env: { REDIS_URL: REDIS_URL ?? '' } })
  const redis = app.redis
  if (!redis) throw new Error('expected a Redis client')
  t.equal(redis.status, 'ready', 'connected before the first request')
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  t.same(res.json(), { status: 'ok', checks: { database: 'ok', redis: 'ok' } })
  await app.close()
  t.equal(redis.status, 'end')
})
