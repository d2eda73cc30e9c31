import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import { ApiError, invalidToken, tokenError } from '../../../lib/errors.js'
import { USER_SCOPES } from '../../../schemas/auth.js'
import type { TokenClaims, TokenType } from '../../../schemas/tokens.js'
import { ACCESS_TYP, LEEWAY_MS, checkShape, checkedClaims, mapVerifyError, type Verified } from './token-checks.js'

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
  // The namespaces this plugin registers: `previous` only with a previous key.
  interface JWT {
    current: JWT
    previous: JWT
  }
}

type Verify = (token: string) => unknown

/**
 * Access and refresh tokens (docs/contract.md, "Tokens", "Signing keys") on
 * @fastify/jwt, configured so that none of fast-jwt's permissive defaults apply: the
 * one configured algorithm (RFC 8725 §3.1: never the one the token names), required
 * claims, iss/aud, 5 s of leeway, every failure a 401 with its code. With ES256/EdDSA
 * the key is chosen by `kid` among the current and previous keys (plugins/app/auth/keys.ts);
 * with HMAC the current secret, then the previous one. The previous key only verifies.
 */
export default fp(async function tokensPlugin (fastify) {
  const config = fastify.config
  const keys = fastify.signingKeys
  // Double-submit CSRF values travel as claims of the tokens that cookies carry.
  const csrf = config.JWT_TOKEN_LOCATION.includes('cookies') && config.JWT_COOKIE_CSRF_PROTECT
  const requiredClaims = ['sub', 'jti', 'iat', 'exp', 'type']
  if (config.JWT_ISSUER !== undefined) requiredClaims.push('iss')
  if (config.JWT_AUDIENCE !== undefined) requiredClaims.push('aud')
  const algorithm = keys?.current.alg ?? config.JWT_ALGORITHM
  const verify = {
    algorithms: [algorithm],
    clockTolerance: LEEWAY_MS,
    requiredClaims,
    ...(config.JWT_ISSUER !== undefined ? { allowedIss: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE !== undefined ? { allowedAud: config.JWT_AUDIENCE } : {}),
    // The header is needed too (typ, kid).
    complete: true,
    // fast-jwt's bounded cache of verified tokens (keyed by a hash of the token, never
    // kept past its exp): a repeated token skips the signature. The claim and
    // revocation checks below run on every request, cached or not.
    cache: 10_000,
    cacheTTL: 600_000
  }
  const sign = { algorithm, ...(keys ? { kid: keys.current.kid } : {}), header: { alg: algorithm, typ: ACCESS_TYP } }
  const refreshSign = { header: { alg: algorithm, typ: 'JWT' } }
  const secret = keys ? { private: keys.current.privatePem, public: keys.current.publicPem } : config.JWT_SECRET_KEY
  await fastify.register(fastifyJwt, { sign, verify, decode: { complete: true }, secret, namespace: 'current' })
  const current = fastify.jwt.current
  let previous: Verify | undefined
  // Asymmetric: the public half of the previous key; HMAC: a previous secret other than the current one.
  const previousSecret = keys
    ? keys.previous && { public: keys.previous.publicPem }
    : (config.JWT_SECRET_KEY_PREVIOUS !== config.JWT_SECRET_KEY ? config.JWT_SECRET_KEY_PREVIOUS : undefined)
  if (previousSecret !== undefined) {
    await fastify.register(fastifyJwt, { verify: { ...verify, algorithms: [keys?.previous?.alg ?? algorithm] }, secret: previousSecret, namespace: 'previous' })
    const jwt = fastify.jwt.previous
    previous = (token) => jwt.verify(token)
  }

  function run (verifier: Verify, token: string): Verified {
    try {
      return verifier(token) as Verified
    } catch (err) {
      throw mapVerifyError(err)
    }
  }

  function verifySignature (token: string): Verified {
    if (keys) {
      // RFC 7515 §4.1.4: the kid names one of our keys, or the token is not ours.
      let kid: unknown
      try {
        kid = (current.decode(token) as Verified | null)?.header.kid
      } catch {
        throw invalidToken('The token is invalid')
      }
      if (kid === keys.current.kid) return run((t) => current.verify(t), token)
      if (previous !== undefined && kid === keys.previous?.kid) return run(previous, token)
      throw invalidToken('The token is invalid')
    }
    try {
      return current.verify(token) as Verified
    } catch (err) {
      if (previous === undefined || (err as { code?: unknown }).code !== 'FAST_JWT_INVALID_SIGNATURE') throw mapVerifyError(err)
    }
    return run(previous, token)
  }

  function verifyToken (token: string, type: TokenType): TokenClaims {
    checkShape(token)
    const payload = checkedClaims(verifySignature(token), type, config)
    const revocation = fastify.revocation
    if (!revocation.current) {
      throw new ApiError('SERVICE_UNAVAILABLE', 'Token revocations cannot be checked right now; retry later', { 'retry-after': '1' })
    }
    if ((payload.sid !== undefined ? revocation.isSessionRevoked(payload.sid) : revocation.isClientDisabled(payload.client_id)) ||
      revocation.isTokenRevoked(payload.jti)) {
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
      const refreshToken = current.sign({ ...baseClaims(userId, 'refresh', now, sessionEnd), jti: refreshJti, scope, sid: sessionId, ...(refreshCsrf ? { csrf: refreshCsrf } : {}) }, refreshSign)
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
    verify: verifyToken
  }
  fastify.decorate('tokens', tokens)
}, { name: 'tokens', dependencies: ['config', 'signing-keys', 'revocation'] })
