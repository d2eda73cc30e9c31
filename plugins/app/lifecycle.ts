import fp from 'fastify-plugin'
import { ApiError } from '../../lib/errors.js'

export type CheckStatus = 'ok' | 'error'
export interface ReadinessCheck {
  name: string
  /** Without this dependency the service cannot work: a failure makes readiness 503. */
  critical: boolean
  run: () => Promise<void>
}

export interface Lifecycle {
  /** True from the moment a shutdown begins: readiness answers 503 from then on. */
  readonly closing: boolean
  beginShutdown: () => void
  addReadinessCheck: (check: ReadinessCheck) => void
  readiness: () => Promise<{ ready: boolean, checks: Record<string, CheckStatus> }>
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

// Readiness waits at most this long for any dependency (docs/contract.md, "Health").
const CHECK_TIMEOUT_MS = 1000

function withTimeout (promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('readiness check timed out')), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Shutdown state and readiness checks: PostgreSQL is critical, Redis is not (the
 * rate limiter works without it); plugins may add checks of their own, so that
 * /health/ready needs no knowledge of them.
 */
export default fp(async function lifecyclePlugin (fastify) {
  let closing = false
  const checks: ReadinessCheck[] = []

  const lifecycle: Lifecycle = {
    get closing () { return closing },
    beginShutdown () { closing = true },
    addReadinessCheck (check) { checks.push(check) },
    async readiness () {
      const results = await Promise.all(checks.map(async (check) => {
        try {
          await withTimeout(check.run(), CHECK_TIMEOUT_MS)
          return [check, 'ok'] as const
        } catch (err) {
          fastify.log.warn({ err, check: check.name }, 'readiness check failed')
          return [check, 'error'] as const
        }
      }))
      const ready = results.every(([check, status]) => status === 'ok' || !check.critical)
      return { ready, checks: Object.fromEntries(results.map(([check, status]) => [check.name, status])) }
    }
  }
  fastify.decorate('lifecycle', lifecycle)

  lifecycle.addReadinessCheck({ name: 'database', critical: true, run: async () => { await fastify.pg.query('SELECT 1') } })
  const redis = fastify.redis
  if (redis !== null) lifecycle.addReadinessCheck({ name: 'redis', critical: false, run: async () => { await redis.ping() } })

  // `fastify start` (fastify-cli) closes the app directly: readiness turns 503 then too.
  let closed = false
  fastify.addHook('preClose', async function markClosing () {
    closing = true
    closed = true
  })

  // Once close() has begun, a request that still reaches us (pipelined on a
  // connection that was busy) is told to retry elsewhere; the health probes answer
  // for themselves. preParsing runs after every onRequest hook, so the response
  // already carries the request id and security headers.
  fastify.addHook('preParsing', function refuseWhileClosed (request, _reply, payload, done) {
    if (closed && !request.routeOptions.url?.startsWith('/health/')) {
      done(new ApiError('SERVICE_UNAVAILABLE', 'The service is shutting down; retry', { 'retry-after': '1' }))
      return
    }
    done(null, payload)
  })

  // A response sent while closing tells its keep-alive connection to go away, so
  // close() never waits out a keep-alive timeout (72 s, past any grace period).
  fastify.addHook('onSend', function closeConnectionWhenClosing (_request, reply, payload, done) {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
}, { name: 'lifecycle', dependencies: ['postgres', 'redis'] })
