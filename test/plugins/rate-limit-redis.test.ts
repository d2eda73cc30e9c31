import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Redis } from 'ioredis'
import { buildServer } from '../../serve.js'
import { testConfig } from '../helper.js'

const REDIS_URL = process.env.REDIS_URL
const skip = REDIS_URL ? false : 'REDIS_URL is not set'

const testRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.get('/ip', async (request) => ({ ip: request.ip }))
  fastify.post('/login', {
    config: { rateLimit: { max: fastify.config.RATE_LIMIT_AUTH_MAX, timeWindow: 60000 } }
  }, async () => ({ ok: true }))
}

/** A unique key prefix per test, so that runs and parallel files never share counters. */
function uniquePrefix (t: Test): string {
  const prefix = `test-${process.pid}-${randomBytes(4).toString('hex')}:`
  t.teardown(async () => {
    const redis = new Redis(REDIS_URL ?? '')
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  })
  return prefix
}

/** N replicas: separate apps (as separate pods would be) sharing one Redis. */
async function replicas (t: Test, count: number, env: Record<string, string>): Promise<FastifyInstance[]> {
  const config = await testConfig({ REDIS_URL: REDIS_URL ?? '', ...env })
  const apps: FastifyInstance[] = []
  for (let i = 0; i < count; i++) {
    const server = await buildServer(config)
    await server.register(testRoutes)
    await server.ready()
    t.teardown(() => server.close())
    apps.push(server)
  }
  return apps
}

t.test('two replicas sharing one Redis enforce one limit together', { skip }, async (t) => {
  const [a, b] = await replicas(t, 2, { RATE_LIMIT_MAX: '5', REDIS_KEY_PREFIX: uniquePrefix(t) })
  if (!a || !b) throw new Error('two replicas expected')
  const seen: Array<[number, string | undefined]> = []
  for (let i = 0; i < 8; i++) {
    const res = await (i % 2 === 0 ? a : b).inject({ method: 'GET', url: '/ip' })
    seen.push([res.statusCode, res.headers['x-ratelimit-remaining'] as string | undefined])
  }
  t.same(seen, [[200, '4'], [200, '3'], [200, '2'], [200, '1'], [200, '0'], [429, '0'], [429, '0'], [429, '0']])
  t.equal(a.rateLimitStats.rejections + b.rateLimitStats.rejections, 3)
  const other = await b.inject({ method: 'GET', url: '/ip', remoteAddress: '203.0.113.50' })
  t.equal(other.statusCode, 200, 'another client is counted apart')
})

t.test('route limits and unknown URLs are shared across replicas too', { skip }, async (t) => {
  const [a, b, c] = await replicas(t, 3, { RATE_LIMIT_MAX: '4', RATE_LIMIT_AUTH_MAX: '2', REDIS_KEY_PREFIX: uniquePrefix(t) })
  if (!a || !b || !c) throw new Error('three replicas expected')
  const logins = []
  for (const app of [a, b, c]) logins.push((await app.inject({ method: 'POST', url: '/login', payload: {} })).statusCode)
  t.same(logins, [200, 200, 429])
  const probes = []
  for (const app of [a, b, c, a, b]) probes.push((await app.inject({ method: 'GET', url: `/probe-${randomBytes(3).toString('hex')}` })).statusCode)
  t.same(probes, [404, 404, 404, 404, 429])
})

t.test('keeps counters under REDIS_KEY_PREFIX, expiring with the window', { skip }, async (t) => {
  const prefix = uniquePrefix(t)
  const [app] = await replicas(t, 1, { RATE_LIMIT_MAX: '10', RATE_LIMIT_WINDOW: '30 seconds', REDIS_KEY_PREFIX: prefix })
  if (!app) throw new Error('one replica expected')
  await app.inject({ method: 'GET', url: '/ip' })
  await app.inject({ method: 'POST', url: '/login', payload: {} })
  const redis = new Redis(REDIS_URL ?? '')
  t.teardown(() => redis.quit())
  const keys = (await redis.keys(`${prefix}*`)).sort()
  t.same(keys, [`${prefix}rate-limit:127.0.0.1`, `${prefix}rate-limit:POST/login-127.0.0.1`])
  const ttl = await redis.pttl(`${prefix}rate-limit:127.0.0.1`)
  t.ok(ttl > 25_000 && ttl <= 30_000, `expires with the window (${ttl} ms left)`)
})

t.test('opens a new window once the Redis counter expires', { skip }, async (t) => {
  const [app] = await replicas(t, 1, { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW: '400', REDIS_KEY_PREFIX: uniquePrefix(t) })
  if (!app) throw new Error('one replica expected')
  t.equal((await app.inject({ method: 'GET', url: '/ip' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/ip' })).statusCode, 429)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal((await app.inject({ method: 'GET', url: '/ip' })).statusCode, 200)
})
