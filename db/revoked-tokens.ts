import { notifyRevocation } from './revocation-events.js'
import { withTransaction, type Database } from './queryable.js'

/**
 * Single tokens revoked by POST /auth/revoke (RFC 7009), by `jti`. A row is needed
 * only while the token could still verify: until its `exp`, then it is pruned.
 */
export function revokedTokensRepository (db: Database) {
  return {
    /** Records the revocation and tells every replica (NOTIFY in the same transaction). */
    async revoke (jti: string, clientId: string, expiresAt: Date): Promise<void> {
      await withTransaction(db, async (client) => {
        await client.query(
          'INSERT INTO revoked_tokens (jti, client_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING',
          [jti, clientId, expiresAt]
        )
        await notifyRevocation(client, { t: 'token', id: jti, exp: Math.ceil(expiresAt.getTime() / 1000) })
      })
    },

    /** Revoked tokens that may still be unexpired: the revocation cache. */
    async listActive (): Promise<Array<{ jti: string, expires_at: Date }>> {
      const { rows } = await db.query<{ jti: string, expires_at: Date }>(
        'SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > now() - interval \'1 minute\''
      )
      return rows
    },

    /** Deletes rows of tokens expired a day ago or more (the day leaves room for clock skew). */
    async prune (): Promise<number> {
      const { rowCount } = await db.query('DELETE FROM revoked_tokens WHERE expires_at < now() - interval \'1 day\'')
      return rowCount ?? 0
    }
  }
}

export type RevokedTokensRepository = ReturnType<typeof revokedTokensRepository>
