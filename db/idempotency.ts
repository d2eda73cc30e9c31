import { randomUUID } from 'node:crypto'
import type { Queryable } from './queryable.js'

/** A response kept for a key: replayed byte for byte. */
export interface StoredResponse {
  statusCode: number
  /** Only the headers that describe the result (content-type, location, etag). */
  headers: Record<string, string>
  body: string
}

export type ClaimResult =
  /** The key is this request's to process; `token` proves it to complete() and release(). */
  | { status: 'claimed', token: string }
  /** The key was used with another request (another body, route or method). */
  | { status: 'reused' }
  /** The same request is being processed now, by this replica or another. */
  | { status: 'in_progress' }
  | { status: 'completed', response: StoredResponse }

export interface ClaimOptions {
  /** How long a key stays claimed by a request that never completes (a replica that died). */
  leaseMs: number
  /** How long a completed response is kept. */
  ttlMs: number
}

interface Row {
  fingerprint: string
  state: 'processing' | 'completed'
  status_code: number | null
  response_headers: Record<string, string> | null
  response_body: string | null
  expired: boolean
}

/**
 * Idempotency keys (migrations/008). Claiming is one INSERT ... ON CONFLICT, so of
 * any number of concurrent first requests on any number of replicas exactly one
 * gets the key; a key whose response expired, or whose lease ran out with the same
 * request, is taken over in that same statement.
 */
export function idempotencyRepository (db: Queryable) {
  return {
    async claim (principal: string, key: string, fingerprint: string, options: ClaimOptions): Promise<ClaimResult> {
      const token = randomUUID()
      // A key released between the INSERT and the SELECT is simply tried again.
      for (let attempt = 0; attempt < 3; attempt++) {
        const claimed = await db.query<{ lock_token: string }>(
          `INSERT INTO idempotency_keys AS k (principal, key, fingerprint, state, lock_token, locked_until, expires_at)
           VALUES ($1, $2, $3, 'processing', $4, now() + $5 * interval '1 millisecond', now() + $6 * interval '1 millisecond')
           ON CONFLICT (principal, key) DO UPDATE
              SET fingerprint = EXCLUDED.fingerprint, state = 'processing', lock_token = EXCLUDED.lock_token,
                  locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at, created_at = now(),
                  status_code = NULL, response_headers = NULL, response_body = NULL
            WHERE k.expires_at <= now()
               OR (k.state = 'processing' AND k.locked_until <= now() AND k.fingerprint = EXCLUDED.fingerprint)
           RETURNING k.lock_token`,
          [principal, key, fingerprint, token, options.leaseMs, options.ttlMs]
        )
        if (claimed.rows[0]?.lock_token === token) return { status: 'claimed', token }

        const { rows } = await db.query<Row>(
          `SELECT fingerprint, state, status_code, response_headers, response_body, expires_at <= now() AS expired
             FROM idempotency_keys WHERE principal = $1 AND key = $2`,
          [principal, key]
        )
        const row = rows[0]
        if (row === undefined || row.expired) continue
        if (row.fingerprint !== fingerprint) return { status: 'reused' }
        if (row.state === 'processing' || row.status_code === null || row.response_body === null) return { status: 'in_progress' }
        return { status: 'completed', response: { statusCode: row.status_code, headers: row.response_headers ?? {}, body: row.response_body } }
      }
      // Three rounds of claim-and-lose: someone is working this key right now.
      return { status: 'in_progress' }
    },

    /** Keeps the response for the key claimed with `token`; false when the claim was lost (its lease ran out). */
    async complete (principal: string, key: string, token: string, response: StoredResponse): Promise<boolean> {
      const { rowCount } = await db.query(
        `UPDATE idempotency_keys
            SET state = 'completed', status_code = $4, response_headers = $5, response_body = $6,
                lock_token = NULL, locked_until = NULL
          WHERE principal = $1 AND key = $2 AND lock_token = $3 AND state = 'processing'`,
        [principal, key, token, response.statusCode, JSON.stringify(response.headers), response.body]
      )
      return rowCount === 1
    },

    /** Frees the key claimed with `token`, so that a retry is processed afresh. */
    async release (principal: string, key: string, token: string): Promise<void> {
      await db.query(
        'DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND lock_token = $3 AND state = \'processing\'',
        [principal, key, token]
      )
    },

    /** Deletes up to `limit` expired keys; the number deleted. */
    async prune (limit = 1000): Promise<number> {
      const { rowCount } = await db.query(
        `DELETE FROM idempotency_keys WHERE (principal, key) IN (
           SELECT principal, key FROM idempotency_keys WHERE expires_at <= now() ORDER BY expires_at LIMIT $1)`,
        [limit]
      )
      return rowCount ?? 0
    }
  }
}

export type IdempotencyRepository = ReturnType<typeof idempotencyRepository>
