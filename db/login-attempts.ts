import type { Count, Counter } from '../lib/rate-limit-store.js'
import type { Queryable } from './queryable.js'

/**
 * Login attempts per account in PostgreSQL (migrations/009), for deployments without
 * Redis: the same fixed-window Counter as the Redis one, shared by every replica. One
 * statement counts and opens or renews the window, so concurrent attempts from many
 * replicas are counted exactly.
 */
export function loginAttemptsRepository (db: Queryable): Counter & { prune: () => Promise<number> } {
  return {
    async incr (key: string, windowMs: number): Promise<Count> {
      const { rows } = await db.query<{ attempts: number, ttl_ms: number }>(
        `INSERT INTO login_attempts AS a (account_key, attempts, window_ends)
         VALUES ($1, 1, clock_timestamp() + $2 * interval '1 millisecond')
         ON CONFLICT (account_key) DO UPDATE
            SET attempts = CASE WHEN a.window_ends <= clock_timestamp() THEN 1 ELSE LEAST(a.attempts + 1, 1000000000) END,
                window_ends = CASE WHEN a.window_ends <= clock_timestamp() THEN EXCLUDED.window_ends ELSE a.window_ends END
         RETURNING attempts, GREATEST(0, ceil(extract(epoch FROM (window_ends - clock_timestamp())) * 1000))::float8 AS ttl_ms`,
        [key, windowMs]
      )
      const row = rows[0]
      if (!row) throw new Error('login attempt upsert returned no row')
      return { current: row.attempts, ttl: row.ttl_ms }
    },

    async reset (key: string): Promise<void> {
      await db.query('DELETE FROM login_attempts WHERE account_key = $1', [key])
    },

    /** Deletes windows that have ended: they count for nothing any more. */
    async prune (): Promise<number> {
      const { rowCount } = await db.query('DELETE FROM login_attempts WHERE window_ends <= now()')
      return rowCount ?? 0
    }
  }
}

export type LoginAttemptsRepository = ReturnType<typeof loginAttemptsRepository>
