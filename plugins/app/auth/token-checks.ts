import { Ajv } from 'ajv'
import type { Config } from '../../../config/schema.js'
import { ApiError, invalidToken, tokenError } from '../../../lib/errors.js'
import { TokenClaimsSchema, type TokenClaims, type TokenType } from '../../../schemas/tokens.js'

// The checks every token passes besides its signature (docs/auth.md, "Tokens"), in
// their fixed order; plugins/app/auth/tokens.ts runs them.

// A JWT is three base64url parts of at most 8 KiB; anything else is refused before decoding.
const MAX_TOKEN_LENGTH = 8192
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
export const LEEWAY_MS = 5000
// RFC 9068 §2.1: access tokens say what they are; refresh tokens are plain JWTs.
export const ACCESS_TYP = 'at+jwt'
// Ajv, as for request bodies, rather than TypeBox's own compiler, which would load
// a second validator into every process (BENCHMARKS.md, "Memory at rest"). The
// schema's UUIDs carry both `format: uuid` (for the OpenAPI document) and the
// pattern, which is the test: `true` lets Ajv accept the format name without
// testing every id twice on every request.
const claims = new Ajv({ formats: { uuid: true } }).compile<TokenClaims>(TokenClaimsSchema)

/** What fast-jwt's verifier and decoder return with `complete: true`. */
export interface Verified { header: { typ?: unknown, kid?: unknown }, payload: unknown }

export function checkShape (token: string): void {
  if (token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) throw invalidToken('The token is invalid')
}

/**
 * The header's `typ`, compared as a media type (RFC 7515 §4.1.9): absent or `JWT` for
 * either kind (tokens of the Flask service), `at+jwt` for access tokens only.
 */
function typMatches (typ: unknown, type: TokenType): boolean {
  if (typ === undefined) return true
  if (typeof typ !== 'string') return false
  const name = typ.toLowerCase().replace(/^application\//, '')
  return name === 'jwt' || (type === 'access' && name === ACCESS_TYP)
}

/** fast-jwt's errors all carry a FAST_JWT_* code; only expiry has a code of its own. */
export function mapVerifyError (err: unknown): ApiError {
  if ((err as { code?: unknown } | null)?.code === 'FAST_JWT_EXPIRED') return tokenError('AUTH_TOKEN_EXPIRED', 'The token has expired', true)
  return invalidToken('The token is invalid')
}

/** The claims of a correctly signed token, if they are those of a token of `type` of ours. */
export function checkedClaims ({ header, payload }: Verified, type: TokenType, config: Config): TokenClaims {
  if (!claims(payload) || !typMatches(header.typ, type)) throw invalidToken('The token is invalid')
  if ((config.JWT_ISSUER !== undefined && payload.iss !== config.JWT_ISSUER) ||
    (config.JWT_AUDIENCE !== undefined && payload.aud !== config.JWT_AUDIENCE) ||
    (payload.client_id !== undefined && payload.sub !== payload.client_id)) {
    throw invalidToken('The token is invalid')
  }
  // RFC 8725 §3.12: a refresh token is not an access token, nor the reverse.
  if (payload.type !== type) throw invalidToken(type === 'access' ? 'An access token is required' : 'A refresh token is required')
  return payload
}
