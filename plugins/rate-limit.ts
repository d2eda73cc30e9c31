import fp from 'fastify-plugin'
import rateLimit, { normalizeIP, type RateLimitPluginOptions } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { ApiError } from '../lib/errors.js'
import { durationMs } from '../lib/duration.js'
import { redisStore } from '../lib/rate-limit-store.js'
import { redisErrorThrottle } from '../lib/redis.js'

export interface RateLimitStats {
  /** Requests answered 429 since start (metrics: rate_limit_rejections_total). */
  rejections: number
}

declare module 'fastify' {
  interface FastifyInstance {
    rateLimitStats: RateLimitStats
  }
}

/**
 * The client key: the address Fastify resolved through TRUST_PROXY (so X-Forwarded-For
 * counts only when a trusted proxy sent it), with IPv6 grouped by /64, since one
 * subscriber usually holds a whole /64 and could otherwise rotate through it.
 */
export function clientKey (request: FastifyRequest): string {
  const ip = request.ip
  // A client that hung up before this hook ran has no address left.
  return typeof ip === 'string' && ip !== '' ? normalizeIP(ip) : 'unknown'
}

/**
 * Rate limits (SPEC §2): RATE_LIMIT_MAX per RATE_LIMIT_WINDOW per client key on every
 * route, stricter limits from a route's `config.rateLimit`, none where a route says
 * `config: { rateLimit: false }` (/health, /metrics). Unknown URLs count too, or they
 * would be free to probe. With REDIS_URL the counters are shared by every replica;
 * when Redis fails the limiter lets requests through (fail open) rather than fail them.
 */
export default fp(async function rateLimitPlugin (fastify) {
  const config = fastify.config
  const stats: RateLimitStats = { rejections: 0 }
  fastify.decorate('rateLimitStats', stats)

  const options: RateLimitPluginOptions = {
    global: true,
    // Before body parsing: a rejected request costs no parsing or validation.
    hook: 'onRequest',
    max: config.RATE_LIMIT_MAX,
    timeWindow: durationMs(config.RATE_LIMIT_WINDOW),
    keyGenerator: clientKey,
    skipOnError: true,
    errorResponseBuilder (_request, context) {
      return new ApiError('RATE_LIMITED', `Rate limit exceeded, retry in ${context.after}`)
    },
    onExceeded () {
      stats.rejections++
    }
  }

  const redis = fastify.redis
  if (redis !== null) {
    const log = fastify.log.child({ dependency: 'redis' })
    const logError = redisErrorThrottle(redis)
    options.store = redisStore(redis, `${config.REDIS_KEY_PREFIX}rate-limit:`, (err) => {
      logError((suppressed) => {
        log.error({ reason: err.message, suppressed }, 'rate-limit store failed; requests are let through (fail open)')
      })
    }) as unknown as RateLimitPluginOptions['store']
  }

  await fastify.register(rateLimit, options)

  // The not-found handler is no route, so the onRoute hook above never limits it.
  fastify.notFoundPreHandlers.push(fastify.rateLimit())
}, { name: 'rate-limit', dependencies: ['env', 'errors', 'redis'] })
