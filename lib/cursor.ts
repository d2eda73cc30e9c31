import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

/** A position in a list ordered by (created_at DESC, id DESC): the last item of a page. */
export interface Position {
  /** The exact timestamp as PostgreSQL keeps it (microseconds, UTC): a JS Date would round it. */
  createdAt: string
  id: string
}

export interface CursorCodec {
  /** An opaque token for the page after `position` of the list named by `scope`. */
  encode: (position: Position, scope: string) => string
  /** The position, or null when the cursor is garbled, forged, or was issued for another list. */
  decode: (cursor: string, scope: string) => Position | null
}

const VERSION = 'v1'
// 128 bits of HMAC-SHA256: far beyond guessing, and it keeps cursors short.
const MAC_BYTES = 16
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const BASE64URL = /^[A-Za-z0-9_-]+$/

/**
 * Keyset-pagination cursors that a client can carry but not forge: the position is
 * signed with a key derived from SECRET_KEY (HKDF, one key per purpose, so a MAC made
 * here is worthless anywhere else) and bound to the list it came from (its owner),
 * so a cursor from one user's list cannot be replayed against another's. A forged
 * or edited cursor decodes to null, never to a silently different page. Rotating
 * SECRET_KEY invalidates outstanding cursors: clients start again from page one.
 */
export function cursorCodec (secret: string, purpose: string): CursorCodec {
  const key = Buffer.from(hkdfSync('sha256', secret, 'cursor', purpose, 32))

  function mac (scope: string, payload: string): Buffer {
    return createHmac('sha256', key).update(`${VERSION}\n${scope}\n${payload}`).digest().subarray(0, MAC_BYTES)
  }

  return {
    encode (position, scope) {
      const payload = Buffer.from(`${position.createdAt}|${position.id}`).toString('base64url')
      return `${payload}.${mac(scope, payload).toString('base64url')}`
    },

    decode (cursor, scope) {
      const parts = cursor.split('.')
      if (parts.length !== 2) return null
      const [payload, signature] = parts as [string, string]
      if (!BASE64URL.test(payload) || !BASE64URL.test(signature)) return null
      const given = Buffer.from(signature, 'base64url')
      // Only the canonical encoding: base64 ignores the unused low bits of the last
      // character, so several strings would otherwise decode to one valid MAC.
      if (given.length !== MAC_BYTES || given.toString('base64url') !== signature) return null
      // Constant-time comparison, so the MAC cannot be found byte by byte.
      if (!timingSafeEqual(given, mac(scope, payload))) return null
      const [createdAt, id, ...rest] = Buffer.from(payload, 'base64url').toString('utf8').split('|')
      // The MAC proves we wrote it; checking the shape anyway keeps a key leak from becoming SQL errors.
      if (rest.length > 0 || createdAt === undefined || id === undefined || !TIMESTAMP.test(createdAt) || !UUID.test(id)) return null
      return { createdAt, id }
    }
  }
}
