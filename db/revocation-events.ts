import { isUuid } from '../schemas/common.js'
import type { Queryable } from './queryable.js'

// Every replica LISTENs on this channel; whoever revokes something NOTIFYs it in the
// same transaction, so the event is delivered exactly when the change is committed.
export const REVOCATION_CHANNEL = 'auth_revocation'

export type RevocationEvent =
  /** A login session and every token of it; `exp` (epoch seconds) is when its tokens all expire. */
  | { t: 'session', id: string, exp: number }
  /** A service client: every token issued to it. */
  | { t: 'client', id: string }
  /** One token, by its `jti` (POST /auth/revoke); `exp` (epoch seconds) is when it expires. */
  | { t: 'token', id: string, exp: number }

export async function notifyRevocation (db: Queryable, event: RevocationEvent): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [REVOCATION_CHANNEL, JSON.stringify(event)])
}

/**
 * Any role that can connect may NOTIFY on any channel, so a payload is parsed as
 * untrusted input: a malformed one is ignored (and the next resync corrects the cache).
 */
export function parseRevocationEvent (payload: string | undefined): RevocationEvent | undefined {
  if (payload === undefined || payload.length > 1000) return undefined
  let value: unknown
  try {
    value = JSON.parse(payload)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { t, id, exp } = value as Record<string, unknown>
  if (typeof id !== 'string' || !isUuid(id)) return undefined
  if ((t === 'session' || t === 'token') && typeof exp === 'number' && Number.isFinite(exp)) return { t, id, exp }
  if (t === 'client') return { t, id }
  return undefined
}
