import fp from 'fastify-plugin'
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { ApiError } from '../../lib/errors.js'

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
 * counts only when a trusted proxy sent it), IPv6 grouped by /64 (one subscriber
 * usually holds a whole /64). A client that hung up early has no address left.
 */
export function clientKey (request: FastifyRequest): string {
  const ip = request.ip
  return typeof ip === 'string' && ip !== '' ? normalizeIP(ip) : 'unknown'
}

/**
 * @fastify/rate-limit (docs/edge.md, "Rate limits"): RATE_LIMIT_MAX per
 * RATE_LIMIT_WINDOW per client key on every route, a route's own `config.rateLimit`
 * instead where it has one (the auth routes), none where it says `false` (/health,
 * /metrics); unknown URLs count too (plugins/app/errors.ts). Its hook runs in
 * onRequest after CORS, so a 429 stays readable, and before authentication
 * (preParsing), so token probing is counted. With REDIS_URL the counters live in
 * Redis, shared by every replica; when Redis fails, requests are let through.
 */
export default fp(async function rateLimitPlugin (fastify) {
  const config = fastify.config
  const stats: RateLimitStats = { rejections: 0 }
  fastify.decorate('rateLimitStats', stats)

  await fastify.register(rateLimit, {
    global: true,
    // Before body parsing: a rejected request costs no parsing or validation.
    hook: 'onRequest',
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW,
    keyGenerator: clientKey,
    skipOnError: true,
    ...(fastify.redis !== null ? { redis: fastify.redis, nameSpace: `${config.REDIS_KEY_PREFIX}rate-limit:` } : {}),
    errorResponseBuilder (_request, context) {
      return new ApiError('RATE_LIMITED', `Rate limit exceeded, retry in ${context.after}`)
    },
    onExceeded () {
      stats.rejections++
    }
  })
}, { name: 'rate-limit', dependencies: ['config', 'cors', 'redis'] })
