import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { Redis, Result } from 'ioredis'

// Fixed-window counters in Redis, shared by every replica, with an in-process
// fallback while Redis cannot be reached (docs/edge.md, "When Redis is
// unavailable"), and the store @fastify/rate-limit takes through its documented
// `store` option (a class it constructs with its settings; incr and child).

/** A count in its window: `ttl` is the milliseconds left until the window resets. */
export interface Count { current: number, ttl: number }

/** Counts events per key in fixed windows: the first event of a key opens its window. */
export interface Counter {
  incr: (key: string, windowMs: number) => Promise<Count>
  /** Forgets the key: its next event opens a new window. */
  reset: (key: string) => Promise<void>
}

/** What a RedisCounter counts with right now. */
export type CounterBackend = 'redis' | 'local' | 'open'

/** Thrown by a counter in `open` mode while Redis is unreachable: nothing was counted. */
export class CounterUnavailable extends Error {
  constructor (reason: string) {
    super(`Redis is unavailable; nothing was counted (${reason})`)
    this.name = 'CounterUnavailable'
  }
}

/**
 * In-process counters, bounded: past `maxKeys` the oldest window is dropped first
 * (Map keeps insertion order, and a new window is a new insertion).
 */
export class LocalCounter implements Counter {
  readonly #windows = new Map<string, { count: number, resetAt: number }>()
  readonly #maxKeys: number
  readonly #now: () => number

  constructor (options: { maxKeys?: number, now?: () => number } = {}) {
    this.#maxKeys = options.maxKeys ?? 10_000
    this.#now = options.now ?? Date.now
  }

  get size (): number { return this.#windows.size }

  incrSync (key: string, windowMs: number): Count {
    const now = this.#now()
    const open = this.#windows.get(key)
    if (open !== undefined && open.resetAt > now) {
      open.count++
      return { current: open.count, ttl: open.resetAt - now }
    }
    this.#windows.delete(key)
    if (this.#windows.size >= this.#maxKeys) this.#evict(now)
    this.#windows.set(key, { count: 1, resetAt: now + windowMs })
    return { current: 1, ttl: windowMs }
  }

  async incr (key: string, windowMs: number): Promise<Count> {
    return this.incrSync(key, windowMs)
  }

  async reset (key: string): Promise<void> {
    this.#windows.delete(key)
  }

  #evict (now: number): void {
    for (const [key, window] of this.#windows) if (window.resetAt <= now) this.#windows.delete(key)
    // Still full of open windows: drop the oldest ones.
    for (const key of this.#windows.keys()) {
      if (this.#windows.size < this.#maxKeys) break
      this.#windows.delete(key)
    }
  }
}

// INCR, and PEXPIRE when the key is new, in one atomic step: a key is never left
// without an expiry (which INCR alone, then a failed PEXPIRE, could do).
const FIXED_WINDOW_LUA = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}
`
const COMMAND = 'fixedWindowIncr'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fixedWindowIncr: (key: string, windowMs: number) => Result<[number, number], Context>
  }
}

/** After a failed command, counting stays in process this long before Redis is asked again. */
export const REDIS_RETRY_MS = 1000

export interface RedisCounterOptions {
  redis: Redis
  /** Prepended to every key. */
  prefix: string
  /** `local`: count in process while Redis is unreachable; `open`: count nothing (CounterUnavailable). */
  fallback: 'local' | 'open'
  /** Told when counting moves between Redis and the fallback (never per event). */
  onBackendChange?: (backend: CounterBackend, reason?: string) => void
  local?: LocalCounter
  now?: () => number
}

/**
 * Counts in Redis while it answers, and otherwise in `fallback`. Redis is not asked
 * while the client is disconnected (a request then costs nothing extra), nor for a
 * second after a command failed (a frozen Redis costs one command timeout per
 * second, not one per request); it is asked again as soon as the client is ready.
 */
export class RedisCounter implements Counter {
  readonly #redis: Redis
  readonly #prefix: string
  readonly #fallback: 'local' | 'open'
  readonly #local: LocalCounter
  readonly #now: () => number
  readonly #onBackendChange: (backend: CounterBackend, reason?: string) => void
  #failedUntil = 0
  #backend: CounterBackend = 'redis'

  constructor (options: RedisCounterOptions) {
    this.#redis = options.redis
    this.#prefix = options.prefix
    this.#fallback = options.fallback
    this.#local = options.local ?? new LocalCounter()
    this.#now = options.now ?? Date.now
    this.#onBackendChange = options.onBackendChange ?? (() => {})
    if (typeof (this.#redis as Partial<Redis>)[COMMAND] !== 'function') {
      this.#redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: FIXED_WINDOW_LUA })
    }
    // A reconnected client is worth asking at once, whatever the last failure was.
    this.#redis.on('ready', () => { this.#failedUntil = 0 })
  }

  /** Where the last event was counted. */
  get backend (): CounterBackend { return this.#backend }

  async incr (key: string, windowMs: number): Promise<Count> {
    if (this.#redisUsable()) {
      try {
        const [current, ttl] = await this.#redis.fixedWindowIncr(this.#prefix + key, windowMs)
        this.#use('redis')
        return { current, ttl }
      } catch (err) {
        this.#failedUntil = this.#now() + REDIS_RETRY_MS
        return this.#fallbackIncr(key, windowMs, (err as Error).message)
      }
    }
    return this.#fallbackIncr(key, windowMs, `Redis connection ${this.#redis.status}`)
  }

  async reset (key: string): Promise<void> {
    // Both: a key counted locally during an outage must not outlive a success either.
    await this.#local.reset(key)
    if (!this.#redisUsable()) return
    try {
      await this.#redis.del(this.#prefix + key)
    } catch {
      this.#failedUntil = this.#now() + REDIS_RETRY_MS
    }
  }

  #redisUsable (): boolean {
    return this.#redis.status === 'ready' && this.#now() >= this.#failedUntil
  }

  #fallbackIncr (key: string, windowMs: number, reason: string): Promise<Count> {
    this.#use(this.#fallback, reason)
    if (this.#fallback === 'open') return Promise.reject(new CounterUnavailable(reason))
    return this.#local.incr(key, windowMs)
  }

  #use (backend: CounterBackend, reason?: string): void {
    if (backend === this.#backend) return
    this.#backend = backend
    this.#onBackendChange(backend, reason)
  }
}

interface RouteInfo { method?: string, url?: string }

/**
 * The @fastify/rate-limit store over a Counter. The library constructs it with its
 * settings and asks each route with its own limit for a child; a child counts under
 * `<METHOD><url>-<client key>`, the key layout of the library's own Redis store, so
 * that counters stay where operators expect them.
 */
export function counterStore (counter: Counter): FastifyRateLimitStoreCtor {
  class CounterStore implements FastifyRateLimitStore {
    readonly #route: string
    constructor (_options: FastifyRateLimitOptions, route = '') {
      this.#route = route
    }

    incr (key: string, callback: (error: Error | null, result?: Count) => void, timeWindow: number): void {
      counter.incr(this.#route + key, timeWindow).then((count) => callback(null, count), (err: Error) => callback(err))
    }

    child (routeOptions: FastifyRateLimitOptions & { routeInfo?: RouteInfo }): FastifyRateLimitStore {
      const info = routeOptions.routeInfo ?? {}
      return new CounterStore(routeOptions, `${info.method ?? ''}${info.url ?? ''}-`)
    }
  }
  return CounterStore
}
