import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { build } from '../helper.js'
import { fromAddress, listening, loopbackAliases } from '../fixtures/from-address.js'
import { freePort, redisServerMissing, startRedis } from '../fixtures/redis-server.js'

// The rate limiter across two replicas and several client addresses (real
// connections from 127.0.0.x) while a private Redis is up, down and back
// (docs/edge.md, "When Redis is unavailable").

const skip = redisServerMissing()

async function waitUntil (check: () => boolean, ms: number): Promise<number> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return Date.now() - started
}

t.test('two replicas share one limit in Redis, each counts its own while Redis is down, and they share again once it is back', { skip }, async (t) => {
  if (!await loopbackAliases(t)) return
  const redisPort = await freePort()
  let redis = await startRedis(t, redisPort)
  const prefix = `fallback-${randomBytes(4).toString('hex')}:`
  const env = { REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW: '1 minute' }
  const logs: object[] = []
  const a = await build(t, { env, logs })
  const b = await build(t, { env })
  const ports = { a: await listening(a), b: await listening(b) }
  // Start-up waits at most a second for Redis; a slow machine may need longer to connect.
  await waitUntil(() => a.redis?.status === 'ready' && b.redis?.status === 'ready', 5000)
  /** `count` requests from `from`, to replica a, b, a, … (or to one replica). */
  async function statuses (from: string, count: number, to: 'both' | 'a' | 'b' = 'both'): Promise<number[]> {
    const out: number[] = []
    for (let i = 0; i < count; i++) {
      const port = to === 'both' ? (i % 2 === 0 ? ports.a : ports.b) : ports[to]
      out.push((await fromAddress(from, port, 'GET', '/nowhere')).status)
    }
    return out
  }

  t.same(await statuses('127.0.0.2', 6), [404, 404, 404, 404, 429, 429], 'Redis up: one budget for both replicas together')
  t.same([a.rateLimitStats.backend, b.rateLimitStats.backend], ['redis', 'redis'])
  t.same(await statuses('127.0.0.3', 2), [404, 404], 'another client address has its own')
  const shared = new Redis(`redis://127.0.0.1:${redisPort}`)
  t.teardown(() => shared.quit())
  t.equal(await shared.get(`${prefix}rate-limit:127.0.0.2`), '6', 'counted in Redis')

  await redis.kill()
  t.same(await statuses('127.0.0.4', 5, 'a'), [404, 404, 404, 404, 429], 'Redis down: replica a still limits the client')
  t.same(await statuses('127.0.0.4', 5, 'b'), [404, 404, 404, 404, 429], 'and so does b, with a count of its own (limits hold per replica)')
  t.same(await statuses('127.0.0.5', 3, 'a'), [404, 404, 404], 'each client address is still counted apart')
  t.same([a.rateLimitStats.backend, b.rateLimitStats.backend], ['local', 'local'])
  const ready = await fromAddress('127.0.0.9', ports.a, 'GET', '/health/ready')
  t.same([ready.status, ready.json()], [200, { status: 'ok', checks: { database: 'ok', redis: 'error' } }], 'still ready')

  redis = await startRedis(t, redisPort)
  const back = await waitUntil(() => a.redis?.status === 'ready' && b.redis?.status === 'ready', 5000)
  t.comment(`both replicas reconnected ${back} ms after Redis was back`)
  t.same(await statuses('127.0.0.6', 6), [404, 404, 404, 404, 429, 429], 'Redis back: one budget for both again')
  t.same([a.rateLimitStats.backend, b.rateLimitStats.backend], ['redis', 'redis'])
  const fallbackLines = (logs as Array<{ msg?: string }>).filter((l) => /rate limits are counted in/.test(l.msg ?? ''))
  t.equal(fallbackLines.length, 2, 'replica a logged the switch to in-process counting and back, once each')
})

t.test('the RateLimit fields follow the counter while it falls back', { skip }, async (t) => {
  const redisPort = await freePort()
  const redis = await startRedis(t, redisPort)
  const app = await build(t, { env: { REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_KEY_PREFIX: `fields-${randomBytes(4).toString('hex')}:`, RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '30 seconds' } })
  await waitUntil(() => app.redis?.status === 'ready', 5000)
  await app.inject({ method: 'GET', url: '/nowhere' })
  await redis.kill()
  const res = await app.inject({ method: 'GET', url: '/nowhere' })
  t.equal(res.headers['ratelimit-policy'], '"default";q=5;w=30')
  t.match(res.headers.ratelimit, /^"default";r=4;t=(30|29)$/, 'a new window in this process')
})
