import t from 'tap'
import Fastify from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import { CounterUnavailable, LocalCounter, RedisCounter, counterStore, type Count, type Counter, type CounterBackend } from '../../lib/rate-limit-store.js'
import { createRedisClient } from '../../lib/redis.js'
import { freePort, redisServerMissing, startRedis } from '../fixtures/redis-server.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('the local counter counts fixed windows per key, forgets on reset, and stays bounded', async (t) => {
  let now = 0
  const counter = new LocalCounter({ maxKeys: 3, now: () => now })
  t.same(await counter.incr('a', 1000), { current: 1, ttl: 1000 })
  now = 400
  t.same(await counter.incr('a', 1000), { current: 2, ttl: 600 }, 'the window started with the first event')
  t.same(await counter.incr('b', 1000), { current: 1, ttl: 1000 }, 'keys are apart')
  now = 1000
  t.same(await counter.incr('a', 1000), { current: 1, ttl: 1000 }, 'a new window once the old one ended')
  await counter.reset('a')
  t.same(await counter.incr('a', 1000), { current: 1, ttl: 1000 })
  for (const key of ['c', 'd', 'e', 'f']) await counter.incr(key, 1000)
  t.ok(counter.size <= 3, `never more than maxKeys windows (${counter.size})`)
})

/** A counter whose answers the test chooses, to see what @fastify/rate-limit does with them. */
class ScriptedCounter implements Counter {
  calls: Array<{ key: string, windowMs: number }> = []
  fail = false
  async incr (key: string, windowMs: number): Promise<Count> {
    this.calls.push({ key, windowMs })
    if (this.fail) throw new CounterUnavailable('scripted')
    return { current: this.calls.length, ttl: 1500 }
  }

  async reset (): Promise<void> {}
}

// The parts of @fastify/rate-limit's store interface this service relies on
// (its README, "store"), pinned here so that an upgrade that changes them fails.
t.test('the library builds the store from its settings, gives a route with its own limit a child, and passes the window in ms', async (t) => {
  const counter = new ScriptedCounter()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(rateLimit, { global: true, max: 5, timeWindow: '2 seconds', store: counterStore(counter), skipOnError: true })
  app.get('/a', async () => 'a')
  app.post('/login', { config: { rateLimit: { max: 2, timeWindow: 60_000 } } }, async () => 'b')
  await app.ready()

  const a = await app.inject({ method: 'GET', url: '/a' })
  t.same(counter.calls.at(-1), { key: '127.0.0.1', windowMs: 2000 }, 'the global counter: the client key, the window as ms')
  t.equal(a.headers['x-ratelimit-limit'], '5')
  t.equal(a.headers['x-ratelimit-remaining'], '4', 'remaining is max minus the count we return')
  t.equal(a.headers['x-ratelimit-reset'], '2', 'reset is our ttl in whole seconds, rounded up')
  await app.inject({ method: 'POST', url: '/login' })
  t.same(counter.calls.at(-1), { key: 'POST/login-127.0.0.1', windowMs: 60_000 }, 'a child per route, keyed <METHOD><url>-<client>')
  const limited = await app.inject({ method: 'POST', url: '/login' })
  t.equal(limited.statusCode, 429, 'a count above max is refused')

  counter.fail = true
  const failed = await app.inject({ method: 'GET', url: '/a' })
  t.equal(failed.statusCode, 200, 'with skipOnError, a store error lets the request through (RATE_LIMIT_REDIS_FALLBACK=open)')
  t.equal(failed.headers['x-ratelimit-remaining'], '5')
})

const skip = redisServerMissing()

t.test('the Redis counter shares counts between clients, expires them with the window, and falls back while Redis is down', { skip }, async (t) => {
  const port = await freePort()
  let redis = await startRedis(t, port)
  const url = `redis://127.0.0.1:${port}`
  const clients = await Promise.all([createRedisClient(url), createRedisClient(url)])
  for (const client of clients) {
    client.on('error', () => {})
    await client.connect()
    t.teardown(() => client.disconnect())
  }
  const changes: CounterBackend[] = []
  const [one, two] = clients.map((redis) => new RedisCounter({ redis, prefix: 'p:', fallback: 'local', onBackendChange: (b) => changes.push(b) })) as [RedisCounter, RedisCounter]

  t.equal((await one.incr('k', 5000)).current, 1)
  const second = await two.incr('k', 5000)
  t.equal(second.current, 2, 'two replicas, one count')
  t.ok(second.ttl > 4000 && second.ttl <= 5000, `the window is the first event's (${second.ttl} ms left)`)
  const direct = new Redis(url)
  t.teardown(() => direct.disconnect())
  direct.on('error', () => {})
  const pttl = await direct.pttl('p:k')
  t.ok(pttl > 4000 && pttl <= 5000, 'the key expires with its window, set in the same script as the count')
  await one.reset('k')
  t.equal(await direct.exists('p:k'), 0, 'reset deletes it')

  await redis.kill()
  const started = Date.now()
  const local = await one.incr('k', 5000)
  t.equal(local.current, 1, 'counted in process')
  t.ok(Date.now() - started < 200, 'without waiting on the dead Redis')
  t.equal(one.backend, 'local')
  t.equal((await one.incr('k', 5000)).current, 2)

  redis = await startRedis(t, port)
  const deadline = Date.now() + 5000
  while (clients[0]?.status !== 'ready' && Date.now() < deadline) await sleep(20)
  t.equal((await one.incr('k', 5000)).current, 1, 'back in Redis (a restarted Redis without persistence starts a new window)')
  t.equal(one.backend, 'redis')
  t.same(changes, ['local', 'redis'], 'each switch reported once')
})

t.test('in open mode the Redis counter counts nothing while Redis is down', { skip }, async (t) => {
  const port = await freePort()
  const redis = await startRedis(t, port)
  const client = await createRedisClient(`redis://127.0.0.1:${port}`)
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.disconnect())
  const counter = new RedisCounter({ redis: client, prefix: 'o:', fallback: 'open' })
  t.equal((await counter.incr('k', 1000)).current, 1)
  await redis.kill()
  await t.rejects(counter.incr('k', 1000), CounterUnavailable)
  t.equal(counter.backend, 'open')
})
