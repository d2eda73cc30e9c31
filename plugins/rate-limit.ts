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
  if (typeof ip !== 'string' || ip === '') return 'unknown'
  // An IPv4 address (no colon) is its own key, as normalizeIP would return it; its
  // IPv6 test is a long regular expression, run on every request otherwise.
  return ip.includes(':') ? normalizeIP(ip) : ip
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

  await fastify.register(rateLimit, { ...options, global: false })

  // One hook in the app's own context, so it runs before any route plugin's hooks
  // (and after CORS, so a 429 can be read by a listed origin and its preflights pass):
  // the library's global mode adds its hook to each route after the route's own
  // onRequest hooks, so a request failing authentication (a token probe) was never
  // counted. Routes with `config.rateLimit` get their own limiter, keyed by route so
  // that their counters never mix with the global one (nor with each other's).
  type Limiter = ReturnType<typeof fastify.rateLimit>
  const globalLimiter = fastify.rateLimit()
  // By route, not by config object: routes may share one config object (the auth routes do).
  const routeLimiters = new Map<string, Limiter>()
  fastify.addHook('onRoute', function prepareRouteLimiter (route) {
    const own = (route.config as { rateLimit?: unknown } | undefined)?.rateLimit
    if (own === undefined || own === null || own === false) return
    if (typeof own !== 'object') throw new Error(`route ${route.url}: config.rateLimit must be an object or false`)
    // The library's own per-route key format: METHOD + URL + '-' + client.
    const prefix = `${String(route.method)}${route.url}-`
    routeLimiters.set(prefix, fastify.rateLimit({ ...own, keyGenerator: (request: FastifyRequest) => prefix + clientKey(request) }))
  })
  fastify.addHook('onRequest', function limitRequest (request, reply, done) {
    const route = request.routeOptions
    const own = (route.config as { rateLimit?: unknown }).rateLimit
    if (own === false) return done()
    const limiter = (own !== undefined && own !== null ? routeLimiters.get(`${String(route.method)}${route.url}-`) : undefined) ?? globalLimiter
    limiter.call(fastify, request, reply).then(() => done(), done)
  })

  // Unknown URLs pass through the hook above too (the not-found route lives in this
  // context); this keeps them counted should the 404 handler ever move.
  fastify.notFoundPreHandlers.push(globalLimiter)
}, { name: 'rate-limit', dependencies: ['env', 'errors', 'redis', 'cors'] })
