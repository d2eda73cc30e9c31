import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'

type StoreCallback = (err: Error | null, result: { current: number, ttl: number } | null) => void

/** The store contract of @fastify/rate-limit (incr, read, child). */
interface Store {
  incr: (key: string, cb: StoreCallback, timeWindow: number, max: number) => void
  read: (key: string, cb: StoreCallback, timeWindow: number, max: number) => void
  child: (routeOptions: Record<string, unknown>) => Store
}

interface StoreParams { continueExceeding?: boolean, exponentialBackoff?: boolean }

type RedisStoreConstructor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => Store

// The library's own Redis store (its Lua script increments and expires atomically);
// it is not exported from the package entry, so it is loaded by path.
const require = createRequire(import.meta.url)
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as RedisStoreConstructor

/** Wraps a store so that its failures are reported before the limiter fails open. */
class ReportingStore implements Store {
  readonly #inner: Store
  readonly #onError: (err: Error) => void

  constructor (inner: Store, onError: (err: Error) => void) {
    this.#inner = inner
    this.#onError = onError
  }

  #report (cb: StoreCallback): StoreCallback {
    return (err, result) => {
      if (err) this.#onError(err)
      cb(err, result)
    }
  }

  incr (key: string, cb: StoreCallback, timeWindow: number, max: number): void {
    this.#inner.incr(key, this.#report(cb), timeWindow, max)
  }

  read (key: string, cb: StoreCallback, timeWindow: number, max: number): void {
    this.#inner.read(key, this.#report(cb), timeWindow, max)
  }

  child (routeOptions: Record<string, unknown>): Store {
    // Limiters made with fastify.rateLimit(options) have no route here; their keys
    // already name the route (plugins/rate-limit.ts), so they share this store.
    const route = routeOptions.routeInfo as { url?: string } | undefined
    if (route?.url === undefined) return this
    return new ReportingStore(this.#inner.child(routeOptions), this.#onError)
  }
}

/**
 * The `store` option of @fastify/rate-limit (a class it instantiates with its
 * settings): counters in Redis under `prefix`, shared by every replica, with each
 * failure passed to `onError`.
 */
export function redisStore (redis: Redis, prefix: string, onError: (err: Error) => void): new (params: StoreParams) => Store {
  return class SharedRedisStore extends ReportingStore {
    constructor (params: StoreParams) {
      super(new RedisStore(params.continueExceeding ?? false, params.exponentialBackoff ?? false, redis, prefix), onError)
    }
  }
}
