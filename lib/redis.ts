import type { Redis, RedisOptions } from 'ioredis'

// Redis only holds rate-limit counters, which fail open: a request must never wait
// on it for long. Measured costs are in docs/edge.md.
export const REDIS_TIMEOUTS = {
  /** A TCP connection that is not up by then is abandoned and retried later. */
  connect: 1000,
  /** One command (a counter increment) that takes longer fails open. */
  command: 100,
  /** No reply at all for this long while commands wait: the socket is dropped and reopened. */
  socket: 1000,
  /** Start-up waits at most this long for Redis before serving without it. */
  startup: 1000
} as const

/** Reconnection delay after the nth failed attempt: quick at first, then every 2 s, forever. */
export function reconnectDelay (attempt: number): number {
  return Math.min(attempt * 100, 2000)
}

export function redisOptions (): RedisOptions {
  return {
    // Connected explicitly, after the error listener is attached.
    lazyConnect: true,
    connectTimeout: REDIS_TIMEOUTS.connect,
    commandTimeout: REDIS_TIMEOUTS.command,
    socketTimeout: REDIS_TIMEOUTS.socket,
    // While disconnected, commands fail at once instead of queueing behind the outage.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay,
    connectionName: 'secure-fastify-service'
  }
}

/**
 * A client for REDIS_URL; it connects when `connect()` is called and reconnects by
 * itself. ioredis is loaded here, on first use: a service without Redis never holds
 * it in memory (BENCHMARKS.md, "Memory at rest").
 */
export async function createRedisClient (url: string): Promise<Redis> {
  const { Redis } = await import('ioredis')
  return new Redis(url, redisOptions())
}

/**
 * Connects, waiting at most `ms`. Resolves false (never rejects) when Redis is not
 * reachable in time: the client keeps reconnecting in the background.
 */
export async function connectWithin (redis: Redis, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  const connected = redis.connect().then(() => true, () => false)
  try {
    return await Promise.race([connected, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Closes politely when connected (pending commands are answered), at once
 * otherwise, and resolves once the connection is gone (at most `ms` later).
 */
export async function closeRedis (redis: Redis, ms = 1000): Promise<void> {
  if (redis.status === 'end') return
  let timer: NodeJS.Timeout | undefined
  const ended = new Promise<void>((resolve) => {
    redis.once('end', resolve)
    timer = setTimeout(resolve, ms)
  })
  if (redis.status === 'ready') {
    // quit() waits for the replies already asked for; disconnect() if that stalls.
    redis.quit().catch(() => redis.disconnect())
  } else {
    redis.disconnect()
  }
  await ended
  clearTimeout(timer)
  // Read again: the status has moved on since the checks above (TypeScript narrowed it).
  if ((redis.status as string) !== 'end') redis.disconnect()
}
