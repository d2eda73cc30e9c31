import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import { Compile } from 'typebox/compile'
import { ApiError, invalidToken, tokenError } from '../../../lib/errors.js'
import { USER_SCOPES } from '../../../schemas/auth.js'
import { TokenClaimsSchema, type TokenClaims, type TokenType } from '../../../schemas/tokens.js'

export interface IssuedTokens {
  accessToken: string
  refreshToken: string
  /** Seconds the access token is valid for. */
  expiresIn: number
  accessCsrf?: string
  refreshCsrf?: string
}

export interface Tokens {
  /** Tokens of a login session: the access token and the session's current refresh token. */
  issueForSession: (session: { userId: string, sessionId: string, refreshJti: string, expiresAt: Date }) => IssuedTokens
  /** An access token for a service client (client credentials grant: no refresh token). */
  issueForClient: (client: { id: string, name: string }, scopes: string[]) => { accessToken: string, expiresIn: number }
  /** Verifies a token as it is: shape, signature, algorithm, claims, type and revocation. */
  verify: (token: string, type: TokenType) => TokenClaims
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
  }
}
declare module '@fastify/jwt' {
  // The namespaces this plugin registers: `previous` only with JWT_SECRET_KEY_PREVIOUS.
  interface JWT {
    current: JWT
    previous: JWT
  }
}

// A JWT is three base64url parts of at most 8 KiB; anything else is refused before decoding.
const MAX_TOKEN_LENGTH = 8192
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const LEEWAY_MS = 5000
const claims = Compile(TokenClaimsSchema)

type Verify = (token: string) => unknown

/** fast-jwt's errors all carry a FAST_JWT_* code; only expiry has a code of its own. */
function mapVerifyError (err: unknown): ApiError {
  if ((err as { code?: unknown } | null)?.code === 'FAST_JWT_EXPIRED') return tokenError('AUTH_TOKEN_EXPIRED', 'The token has expired', true)
  return invalidToken('The token is invalid')
}

/**
 * Access and refresh tokens (docs/contract.md, "Tokens") on @fastify/jwt, configured
 * so that none of fast-jwt's permissive defaults apply: the one configured algorithm
 * (RFC 8725 §3.1: never the one the token names), required claims, iss/aud, 5 s of
 * leeway, every failure a 401 with its code. The previous key only verifies.
 */
export default fp(async function tokensPlugin (fastify) {
  const config = fastify.config
  // Double-submit CSRF values travel as claims of the tokens that cookies carry.
  const csrf = config.JWT_TOKEN_LOCATION.includes('cookies') && config.JWT_COOKIE_CSRF_PROTECT
  const requiredClaims = ['sub', 'jti', 'iat', 'exp', 'type']
  if (config.JWT_ISSUER !== undefined) requiredClaims.push('iss')
  if (config.JWT_AUDIENCE !== undefined) requiredClaims.push('aud')
  const options = {
    sign: { algorithm: config.JWT_ALGORITHM },
    verify: {
      algorithms: [config.JWT_ALGORITHM],
      clockTolerance: LEEWAY_MS,
      requiredClaims,
      ...(config.JWT_ISSUER !== undefined ? { allowedIss: config.JWT_ISSUER } : {}),
      ...(config.JWT_AUDIENCE !== undefined ? { allowedAud: config.JWT_AUDIENCE } : {}),
      // fast-jwt's bounded cache of verified tokens (keyed by a hash of the token, never
      // kept past its exp): a repeated token skips the signature. The claim and
      // revocation checks below run on every request, cached or not.
      cache: 10_000,
      cacheTTL: 600_000
    }
  }
  await fastify.register(fastifyJwt, { ...options, secret: config.JWT_SECRET_KEY, namespace: 'current' })
  const current = fastify.jwt.current
  let previous: Verify | undefined
  if (config.JWT_SECRET_KEY_PREVIOUS !== undefined && config.JWT_SECRET_KEY_PREVIOUS !== config.JWT_SECRET_KEY) {
    await fastify.register(fastifyJwt, { ...options, secret: config.JWT_SECRET_KEY_PREVIOUS, namespace: 'previous' })
    const jwt = fastify.jwt.previous
    previous = (token) => jwt.verify(token)
  }

  function verifySignature (token: string): unknown {
    try {
      return current.verify(token)
    } catch (err) {
      if (previous === undefined || (err as { code?: unknown }).code !== 'FAST_JWT_INVALID_SIGNATURE') throw mapVerifyError(err)
    }
    try {
      return previous(token)
    } catch (err) {
      throw mapVerifyError(err)
    }
  }

  function verify (token: string, type: TokenType): TokenClaims {
    if (token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) throw invalidToken('The token is invalid')
    const payload = verifySignature(token)
    if (!claims.Check(payload)) throw invalidToken('The token is invalid')
    if ((config.JWT_ISSUER !== undefined && payload.iss !== config.JWT_ISSUER) ||
      (config.JWT_AUDIENCE !== undefined && payload.aud !== config.JWT_AUDIENCE) ||
      (payload.client_id !== undefined && payload.sub !== payload.client_id)) {
      throw invalidToken('The token is invalid')
    }
    // RFC 8725 §3.12: a refresh token is not an access token, nor the reverse.
    if (payload.type !== type) throw invalidToken(type === 'access' ? 'An access token is required' : 'A refresh token is required')
    const revocation = fastify.revocation
    if (!revocation.current) {
      throw new ApiError('SERVICE_UNAVAILABLE', 'Token revocations cannot be checked right now; retry later', { 'retry-after': '1' })
    }
    if (payload.sid !== undefined ? revocation.isSessionRevoked(payload.sid) : revocation.isClientDisabled(payload.client_id)) {
      throw tokenError('AUTH_TOKEN_REVOKED', 'The token has been revoked', true)
    }
    return payload
  }

  function baseClaims (sub: string, type: TokenType, now: number, exp: number): Record<string, unknown> {
    return {
      sub,
      jti: randomUUID(),
      iat: now,
      nbf: now,
      exp,
      type,
      ...(config.JWT_ISSUER !== undefined ? { iss: config.JWT_ISSUER } : {}),
      ...(config.JWT_AUDIENCE !== undefined ? { aud: config.JWT_AUDIENCE } : {})
    }
  }

  const tokens: Tokens = {
    issueForSession ({ userId, sessionId, refreshJti, expiresAt }) {
      const now = Math.floor(Date.now() / 1000)
      // No token outlives its session (ASVS 10.4.8: absolute lifetime), which also
      // bounds how long a revoked session must stay in the revocation cache.
      const sessionEnd = Math.floor(expiresAt.getTime() / 1000)
      const accessExp = Math.min(now + config.JWT_ACCESS_TOKEN_EXPIRES, sessionEnd)
      const accessCsrf = csrf ? randomUUID() : undefined
      const refreshCsrf = csrf ? randomUUID() : undefined
      const scope = USER_SCOPES.join(' ')
      const accessToken = current.sign({ ...baseClaims(userId, 'access', now, accessExp), scope, sid: sessionId, ...(accessCsrf ? { csrf: accessCsrf } : {}) })
      const refreshToken = current.sign({ ...baseClaims(userId, 'refresh', now, sessionEnd), jti: refreshJti, scope, sid: sessionId, ...(refreshCsrf ? { csrf: refreshCsrf } : {}) })
      return { accessToken, refreshToken, expiresIn: Math.max(0, accessExp - now), accessCsrf, refreshCsrf }
    },
    issueForClient (client, scopes) {
      const now = Math.floor(Date.now() / 1000)
      const accessToken = current.sign({
        ...baseClaims(client.id, 'access', now, now + config.JWT_ACCESS_TOKEN_EXPIRES),
        scope: scopes.join(' '),
        client_id: client.id,
        client_name: client.name
      })
      return { accessToken, expiresIn: config.JWT_ACCESS_TOKEN_EXPIRES }
    },
    verify
  }
  fastify.decorate('tokens', tokens)
}, { name: 'tokens', dependencies: ['config', 'revocation'] })
