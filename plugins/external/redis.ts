import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { closeRedis, connectWithin, createRedisClient, REDIS_TIMEOUTS } from '../../lib/redis.js'
import { throttle } from '../../lib/throttle.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis client when REDIS_URL is set, null otherwise. */
    redis: Redis | null
  }
}

/** At most one Redis error line per this interval. */
export const ERROR_LOG_INTERVAL_MS = 5000

/**
 * The ioredis client behind the rate limits shared by every replica. Redis is not
 * needed to serve: start-up waits at most a second for it, readiness reports it
 * without failing, and the client reconnects by itself after an outage.
 */
export default fp(async function redisPlugin (fastify) {
  const url = fastify.config.REDIS_URL
  if (url === undefined) {
    fastify.decorate('redis', null)
    return
  }

  const redis = await createRedisClient(url)
  const log = fastify.log.child({ dependency: 'redis' })
  const logError = throttle(ERROR_LOG_INTERVAL_MS)
  let down = false
  let closing = false

  function outage (fields: Record<string, unknown>): void {
    down = true
    logError((suppressed) => {
      log.error({ ...fields, suppressed }, fastify.config.RATE_LIMIT_REDIS_FALLBACK === 'open'
        ? 'Redis is unavailable: rate limits are not enforced until it returns'
        : 'Redis is unavailable: rate limits are counted per replica until it returns')
    })
  }

  // Without a listener ioredis prints every failed attempt to the console. The URL
  // may hold a password: only the error's own fields are logged.
  redis.on('error', (err: Error & { code?: string }) => outage({ code: err.code, reason: err.message }))
  // A connection that drops and comes back before any attempt fails emits no error.
  redis.on('close', () => { if (!closing && !down) outage({ reason: 'connection closed' }) })
  redis.on('ready', () => {
    if (down) log.info('Redis connection restored: rate limits are shared by every replica again')
    down = false
  })

  // A failure is logged by the listeners above; the client keeps reconnecting.
  await connectWithin(redis, REDIS_TIMEOUTS.startup)

  fastify.decorate('redis', redis)
  fastify.addHook('onClose', async function closeRedisClient () {
    closing = true
    await closeRedis(redis)
  })
}, { name: 'redis', dependencies: ['config'] })
