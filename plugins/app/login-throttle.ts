import { createHmac } from 'node:crypto'
import fp from 'fastify-plugin'
import { durationMs } from '../../config/rules.js'
import { CounterUnavailable, RedisCounter, type Counter } from '../../lib/rate-limit-store.js'

export type LoginVerdict =
  | { allowed: true }
  /** Too many attempts for this account in the window: answer 429 with this Retry-After. */
  | { allowed: false, retryAfterSeconds: number }

export interface LoginThrottle {
  /**
   * Counts a login attempt for the (normalised) email before its password is looked
   * at, so that concurrent guesses are counted too: past LOGIN_MAX_FAILURES in the
   * window, the attempt is refused whatever the password.
   */
  attempt: (email: string) => Promise<LoginVerdict>
  /** A successful login: the account's count starts again. */
  succeeded: (email: string) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    loginThrottle: LoginThrottle
  }
}

const PRUNE_INTERVAL_MS = 10 * 60_000

/**
 * Login throttling per account (docs/edge.md, "Login throttling"): LOGIN_MAX_FAILURES
 * failed logins per email within LOGIN_FAILURE_WINDOW, counted for every replica
 * together in Redis when it is configured (with the rate limits' fallback while it
 * is unreachable) and in PostgreSQL otherwise. Unknown emails are counted exactly
 * like known ones. The key is an HMAC of the email under SECRET_KEY: neither Redis
 * nor the table ever holds an address someone tried.
 */
export default fp(async function loginThrottlePlugin (fastify) {
  const config = fastify.config
  // config/rules.ts refuses a window it cannot read, or under a second.
  const windowMs = durationMs(config.LOGIN_FAILURE_WINDOW) ?? 15 * 60_000
  const max = config.LOGIN_MAX_FAILURES
  const log = fastify.log.child({ component: 'login-throttle' })
  const redis = fastify.redis

  let counter: Counter
  if (redis !== null) {
    counter = new RedisCounter({
      redis,
      prefix: `${config.REDIS_KEY_PREFIX}login-attempts:`,
      fallback: config.RATE_LIMIT_REDIS_FALLBACK,
      onBackendChange (backend) {
        if (backend === 'redis') log.info('login attempts are counted in Redis again')
        else if (backend === 'local') log.warn('Redis is unreachable: login attempts are counted in this process (per replica) until it answers')
        else log.warn('Redis is unreachable: logins are not throttled until it answers (RATE_LIMIT_REDIS_FALLBACK=open)')
      }
    })
  } else {
    const table = fastify.repos.loginAttempts
    counter = table
    const prune = setInterval(() => {
      table.prune().catch((err: Error) => log.warn({ reason: err.message }, 'pruning ended login windows failed'))
    }, PRUNE_INTERVAL_MS)
    prune.unref()
    fastify.addHook('onClose', async function stopPruning () { clearInterval(prune) })
  }

  // NFKC and lower case on top of the route's own normalisation: a coarser key can
  // only throttle more spellings together, never let one spelling escape.
  const accountKey = (email: string) =>
    createHmac('sha256', config.SECRET_KEY).update(`login:${email.normalize('NFKC').trim().toLowerCase()}`).digest('base64url')

  const throttle: LoginThrottle = {
    async attempt (email) {
      let count
      try {
        count = await counter.incr(accountKey(email), windowMs)
      } catch (err) {
        // RATE_LIMIT_REDIS_FALLBACK=open: nothing can be counted, so nothing is refused.
        if (err instanceof CounterUnavailable) return { allowed: true }
        throw err
      }
      if (count.current <= max) return { allowed: true }
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(count.ttl / 1000)) }
    },
    async succeeded (email) {
      await counter.reset(accountKey(email))
    }
  }
  fastify.decorate('loginThrottle', throttle)
}, { name: 'login-throttle', dependencies: ['config', 'redis', 'repositories'] })
