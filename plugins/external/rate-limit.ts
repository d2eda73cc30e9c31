import fp from 'fastify-plugin'
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { durationMs } from '../../config/rules.js'
import { ApiError } from '../../lib/errors.js'
import { RedisCounter, counterStore, type CounterBackend } from '../../lib/rate-limit-store.js'
import { securityEvent } from '../../lib/security-events.js'

export interface RateLimitStats {
  /** Requests answered 429 since start (metrics: rate_limit_rejections_total). */
  rejections: number
  /** Where requests are counted now: Redis, this process (Redis unreachable), or nowhere (`open`). */
  readonly backend: CounterBackend | 'process'
}

declare module 'fastify' {
  interface FastifyInstance {
    rateLimitStats: RateLimitStats
  }
}

/**
 * The client key: the address Fastify resolved through TRUST_PROXY (so X-Forwarded-For
 * counts only when a trusted proxy sent it), IPv6 grouped by /64 (one subscriber
 * usually holds a whole /64). A client that hung up early has no address left.
 */
export function clientKey (request: FastifyRequest): string {
  const ip = request.ip
  return typeof ip === 'string' && ip !== '' ? normalizeIP(ip) : 'unknown'
}

interface Policy { name: string, windowSeconds: number }
type RouteLimit = { max?: unknown, timeWindow?: unknown } | false | undefined

/**
 * @fastify/rate-limit (docs/edge.md, "Rate limits"): RATE_LIMIT_MAX per
 * RATE_LIMIT_WINDOW per client key on every route, a route's own `config.rateLimit`
 * instead where it has one (the auth routes), none where it says `false` (/health,
 * /metrics); unknown URLs count too (plugins/app/not-found.ts). Its hook runs in
 * onRequest after CORS, so a 429 stays readable, and before authentication
 * (preParsing), so token probing is counted. With REDIS_URL the counters live in
 * Redis, shared by every replica; while Redis is unreachable each replica counts in
 * process (RATE_LIMIT_REDIS_FALLBACK=local) or lets requests through (`open`).
 */
export default fp(async function rateLimitPlugin (fastify) {
  const config = fastify.config
  const redis = fastify.redis
  const log = fastify.log.child({ dependency: 'redis' })
  const counter = redis === null
    ? undefined
    : new RedisCounter({
      redis,
      prefix: `${config.REDIS_KEY_PREFIX}rate-limit:`,
      fallback: config.RATE_LIMIT_REDIS_FALLBACK,
      onBackendChange (backend, reason) {
        if (backend === 'redis') log.info('rate limits are counted in Redis again, shared by every replica')
        else if (backend === 'local') log.warn({ reason }, 'Redis is unreachable: rate limits are counted in this process (per replica) until it answers')
        else log.warn({ reason }, 'Redis is unreachable: rate limits are not enforced until it answers (RATE_LIMIT_REDIS_FALLBACK=open)')
      }
    })
  const stats: RateLimitStats = {
    rejections: 0,
    get backend () { return counter?.backend ?? 'process' }
  }
  fastify.decorate('rateLimitStats', stats)

  const globalWindow = durationMs(config.RATE_LIMIT_WINDOW) ?? 60_000
  const policies = new WeakMap<object, Policy>()
  const defaultPolicy: Policy = { name: 'default', windowSeconds: Math.ceil(globalWindow / 1000) }
  /** The named policy of the draft's RateLimit-Policy: the shared budget, or a route's own. */
  function policyOf (request: FastifyRequest): Policy {
    const routeConfig = request.routeOptions.config as { rateLimit?: RouteLimit } | undefined
    const limit = routeConfig?.rateLimit
    if (routeConfig === undefined || typeof limit !== 'object') return defaultPolicy
    let policy = policies.get(routeConfig)
    if (policy === undefined) {
      const window = typeof limit.timeWindow === 'number' ? limit.timeWindow : durationMs(String(limit.timeWindow ?? '')) ?? globalWindow
      policy = { name: `${request.method} ${request.routeOptions.url ?? ''}`, windowSeconds: Math.ceil(window / 1000) }
      policies.set(routeConfig, policy)
    }
    return policy
  }

  await fastify.register(rateLimit, {
    global: true,
    // Before body parsing: a rejected request costs no parsing or validation.
    hook: 'onRequest',
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW,
    keyGenerator: clientKey,
    // Only `open` lets an error through: the `local` counter does not fail.
    skipOnError: true,
    ...(counter !== undefined ? { store: counterStore(counter) } : {}),
    errorResponseBuilder (_request, context) {
      return new ApiError('RATE_LIMITED', `Rate limit exceeded, retry in ${context.after}`)
    },
    onExceeded (request) {
      stats.rejections++
      securityEvent(request, 'ratelimit.exceeded', { policy: policyOf(request).name })
    }
  })

  // draft-ietf-httpapi-ratelimit-headers (structured fields): the library writes only
  // x-ratelimit-* (its enableDraftSpec is an older draft), so the current fields are
  // derived from those, on every response that carries them, 429s included.
  fastify.addHook('onSend', function rateLimitFields (request, reply, payload, done) {
    const limit = reply.getHeader('x-ratelimit-limit')
    if (limit === undefined) {
      done(null, payload)
      return
    }
    const policy = policyOf(request)
    reply.header('ratelimit-policy', `"${policy.name}";q=${String(limit)};w=${policy.windowSeconds}`)
    reply.header('ratelimit', `"${policy.name}";r=${String(reply.getHeader('x-ratelimit-remaining') ?? 0)};t=${String(reply.getHeader('x-ratelimit-reset') ?? 0)}`)
    done(null, payload)
  })
}, { name: 'rate-limit', dependencies: ['config', 'cors', 'redis'] })
