import { notifyRevocation } from './revocation-events.js'
import { withTransaction, type Database, type Queryable } from './queryable.js'

export type RevokeReason = 'logout' | 'refresh_reuse' | 'admin'

export interface Session {
  id: string
  user_id: string
  expires_at: Date
}

export type RotateResult =
  | { status: 'rotated', session: Session }
  /** A refresh token older than the current one: the session has just been revoked. */
  | { status: 'reused', session: Session }
  | { status: 'revoked' }
  | { status: 'expired' }
  | { status: 'unknown' }

async function markRevoked (client: Queryable, session: Session, reason: RevokeReason): Promise<void> {
  await client.query('UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1', [session.id, reason])
  await notifyRevocation(client, { t: 'session', id: session.id, exp: Math.ceil(session.expires_at.getTime() / 1000) })
}

/** Login sessions: each holds the one refresh token that is valid now. */
export function sessionsRepository (db: Database) {
  return {
    async create (userId: string, refreshJti: string, lifetimeSeconds: number): Promise<Session> {
      const { rows } = await db.query<Session>(
        `INSERT INTO sessions (user_id, refresh_jti, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING id, user_id, expires_at`,
        [userId, refreshJti, lifetimeSeconds]
      )
      const session = rows[0]
      if (!session) throw new Error('session insert returned no row')
      return session
    },

    /**
     * Spends the refresh token `oldJti` of the session and makes `newJti` the only
     * valid one. A token that is not the current one was already spent: someone holds
     * a copy (RFC 9700 §4.14.2), so the whole session is revoked. Two concurrent
     * refreshes with one token serialise on the row lock: the second is a reuse.
     */
    async rotate (sessionId: string, userId: string, oldJti: string, newJti: string): Promise<RotateResult> {
      return withTransaction(db, async (client) => {
        const rotated = await client.query<Session>(
          `UPDATE sessions SET refresh_jti = $4, refreshed_at = now()
           WHERE id = $1 AND user_id = $2 AND refresh_jti = $3 AND revoked_at IS NULL AND expires_at > now()
           RETURNING id, user_id, expires_at`,
          [sessionId, userId, oldJti, newJti]
        )
        if (rotated.rows[0]) return { status: 'rotated', session: rotated.rows[0] }

        const { rows } = await client.query<Session & { revoked_at: Date | null, expired: boolean }>(
          `SELECT id, user_id, expires_at, revoked_at, expires_at <= now() AS expired
           FROM sessions WHERE id = $1 AND user_id = $2 FOR UPDATE`,
          [sessionId, userId]
        )
        const row = rows[0]
        if (!row) return { status: 'unknown' }
        if (row.revoked_at !== null) return { status: 'revoked' }
        if (row.expired) return { status: 'expired' }
        await markRevoked(client, row, 'refresh_reuse')
        return { status: 'reused', session: { id: row.id, user_id: row.user_id, expires_at: row.expires_at } }
      })
    },

    /** Revokes the session (if not already) and tells every replica; undefined when there is none. */
    async revoke (sessionId: string, reason: RevokeReason): Promise<Session | undefined> {
      return withTransaction(db, async (client) => {
        const { rows } = await client.query<Session & { revoked_at: Date | null }>(
          'SELECT id, user_id, expires_at, revoked_at FROM sessions WHERE id = $1 FOR UPDATE',
          [sessionId]
        )
        const row = rows[0]
        if (!row) return undefined
        if (row.revoked_at === null) await markRevoked(client, row, reason)
        return { id: row.id, user_id: row.user_id, expires_at: row.expires_at }
      })
    },

    /** Whether `jti` is the current refresh token of a live session (introspection: a spent one is not active). */
    async isCurrentRefresh (sessionId: string, jti: string): Promise<boolean> {
      const { rows } = await db.query(
        'SELECT 1 FROM sessions WHERE id = $1 AND refresh_jti = $2 AND revoked_at IS NULL AND expires_at > now()',
        [sessionId, jti]
      )
      return rows.length > 0
    },

    /** Revoked sessions some token of which may still be unexpired: the revocation cache. */
    async listRevoked (): Promise<Array<{ id: string, expires_at: Date }>> {
      const { rows } = await db.query<{ id: string, expires_at: Date }>(
        'SELECT id, expires_at FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > now() - interval \'1 minute\''
      )
      return rows
    },

    /**
     * Deletes sessions that ended a day ago or more: no token of theirs can verify any
     * more (tokens never outlive their session), and the day leaves room for clock skew.
     */
    async prune (): Promise<number> {
      const { rowCount } = await db.query('DELETE FROM sessions WHERE expires_at < now() - interval \'1 day\'')
      return rowCount ?? 0
    }
  }
}

export type SessionsRepository = ReturnType<typeof sessionsRepository>
