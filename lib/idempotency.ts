import { createHash } from 'node:crypto'

// The pieces of safe retries that need no framework (docs/contract.md, "Safe
// retries"; draft-ietf-httpapi-idempotency-key-header): reading the key, and the
// fingerprint that tells "the same request again" from "another request, same key".

const MAX_KEY_LENGTH = 255
// Visible ASCII, no space (%x21-7E).
const VISIBLE = /^[\x21-\x7e]+$/

/**
 * The key of an Idempotency-Key header, or undefined when the value is not one: 1 to
 * 255 visible ASCII characters, bare or as the draft's Structured Field String
 * (RFC 8941 §3.3.3: in double quotes, with \" and \\ as the only escapes), so that
 * `"abc"` and `abc` are one key. Two headers (joined with ", " by Node) hold a space
 * and are refused.
 */
export function parseIdempotencyKey (raw: string | string[] | undefined): string | undefined {
  if (typeof raw !== 'string') return undefined
  let key = raw
  if (raw.startsWith('"')) {
    if (raw.length < 2 || !raw.endsWith('"')) return undefined
    const inner = raw.slice(1, -1)
    // Every backslash escapes " or \; a bare quote inside ends the string early.
    if (!/^(?:[^"\\]|\\["\\])*$/.test(inner)) return undefined
    key = inner.replace(/\\(["\\])/g, '$1')
  }
  if (key.length === 0 || key.length > MAX_KEY_LENGTH || !VISIBLE.test(key)) return undefined
  return key
}

/** JSON with object keys sorted at every depth: equal for parsed bodies that differ only in key order or whitespace. */
export function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => item === undefined ? 'null' : canonicalJson(item)).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** What makes two requests "the same": method, route and canonical body (SHA-256, hex). */
export function requestFingerprint (method: string, route: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${route}\n${body === undefined ? '' : canonicalJson(body)}`).digest('hex')
}

/** Responses a retry gets again; the others (5xx, 401, 403, 409, 429) leave the key free for a fresh attempt. */
export function isKeptStatus (statusCode: number): boolean {
  return statusCode < 500 && statusCode !== 401 && statusCode !== 403 && statusCode !== 409 && statusCode !== 429
}
