import type { Queryable } from './queryable.js'

/**
 * The `jti` of each private_key_jwt assertion accepted (RFC 7523 §3), kept until the
 * assertion expires: every replica inserts into this one table, so a replay is
 * refused wherever it is sent.
 */
export function clientAssertionsRepository (db: Queryable) {
  return {
    /** Records the assertion id; false when it was already used (a replay). */
    async use (clientId: string, jti: string, expiresAt: Date): Promise<boolean> {
      const { rowCount } = await db.query(
        'INSERT INTO used_client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
        [clientId, jti, expiresAt]
      )
      return rowCount === 1
    },

    /** Deletes ids of assertions expired a minute ago or more: those can no longer verify. */
    async prune (): Promise<number> {
      const { rowCount } = await db.query('DELETE FROM used_client_assertions WHERE expires_at < now() - interval \'1 minute\'')
      return rowCount ?? 0
    }
  }
}

export type ClientAssertionsRepository = ReturnType<typeof clientAssertionsRepository>
