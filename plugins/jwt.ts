import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, type ErrorCode } from '../lib/errors.js'

/** Who made an authenticated request: a user (through a login session) or a service client. */
export type Principal =
  | { kind: 'user', userId: string, sessionId: string, scopes: string[] }
  | { kind: 'client', clientId: string, name: string, scopes: string[] }

export type TokenType = 'access' | 'refresh'

/** The claims of SPEC §3, after verification and type checks. */
export interface TokenClaims {
  sub: string
  jti: string
  iat: number
  nbf?: number
  exp: number
  type: TokenType
  scope?: string
  sid?: string
  client_id?: string
  client_name?: string
  csrf?: string
  iss?: string
  aud?: string
}

export type TokenLocation = 'headers' | 'cookies'

export interface IssuedTokens {
  accessToken: string
  refreshToken: string
  /** Seconds the access token is valid for. */
  expiresIn: number
  accessCsrf?: string
  refreshCsrf?: string
}

export interface Tokens {
  readonly usesCookies: boolean
  readonly usesHeaders: boolean
  /** Tokens of a login session: the access token and the session's current refresh token. */
  issueForSession: (session: { userId: string, sessionId: string, refreshJti: string, expiresAt: Date }) => IssuedTokens
  /** An access token for a service client (client credentials grant: no refresh token). */
  issueForClient: (client: { id: string, name: string }, scopes: string[]) => { accessToken: string, expiresIn: number }
  /** Reads and verifies the token of `type` from the request's locations (refresh for /auth/refresh). */
  read: (request: FastifyRequest, type: TokenType) => TokenClaims
  /** Verifies a token string as it is (signature, algorithm, claims, type, revocation). */
  verify: (token: string, type: TokenType) => TokenClaims
  setCookies: (reply: FastifyReply, tokens: IssuedTokens) => void
  clearCookies: (reply: FastifyReply) => void
}

/**
 * A callback hook: these run on every authenticated request, and an async hook
 * costs a promise each time (their work is synchronous).
 */
type Hook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
    /** onRequest/preHandler hook: 401 unless a valid access token is presented; sets request.principal. */
    authenticate: Hook
    /** preHandler hook: 403 AUTH_INSUFFICIENT_SCOPE unless the principal holds every scope named. */
    requireScope: (...scopes: string[]) => Hook
  }
  interface FastifyRequest {
    /** Set by fastify.authenticate; read it only on routes that run that hook. */
    principal: Principal
  }
}

export const USER_SCOPES = ['notes:read', 'notes:write'] as const

export const COOKIE_NAMES = {
  access: 'access_token_cookie',
  refresh: 'refresh_token_cookie',
  accessCsrf: 'csrf_access_token',
  refreshCsrf: 'csrf_refresh_token'
} as const
const COOKIE_PATHS = { access: '/', refresh: '/auth' } as const
const CSRF_HEADER = 'x-csrf-token'
const CSRF_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

// SPEC §3. A JWT is three base64url parts; anything else is refused before decoding.
const MAX_TOKEN_LENGTH = 8192
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const LEEWAY_MS = 5000
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const BEARER_CHALLENGE = 'Bearer realm="api"'
const INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'

function tokenError (code: ErrorCode, message: string, presented: boolean): ApiError {
  return new ApiError(code, message, { 'www-authenticate': presented ? INVALID_TOKEN_CHALLENGE : BEARER_CHALLENGE })
}
const invalid = (message: string) => tokenError('AUTH_INVALID_TOKEN', message, true)

type Verify = (token: string) => unknown

/** fast-jwt's errors all carry a FAST_JWT_* code; only expiry has a code of its own. */
function mapVerifyError (err: unknown): ApiError {
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'FAST_JWT_EXPIRED') return tokenError('AUTH_TOKEN_EXPIRED', 'The token has expired', true)
  return invalid('The token is invalid')
}

function isString (value: unknown, max = 512): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max
}
function isOptional (value: unknown, check: (v: unknown) => boolean): boolean {
  return value === undefined || check(value)
}
const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

function constantTimeEqual (a: string, b: string): boolean {
  // Hashing first gives equal lengths, so timingSafeEqual never throws or leaks the length.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

/**
 * Access and refresh tokens (SPEC §3) on @fastify/jwt (fast-jwt), configured so that
 * none of the library's unsafe defaults apply (research: security-catalogue §1):
 * the one configured algorithm only, required claims, iss/aud, 5 s leeway, and every
 * verification failure mapped to a 401 with its code (fast-jwt's own errors would
 * be 500s or 400s). Token lookup is ours: @fastify/jwt cannot follow
 * JWT_TOKEN_LOCATION's order, JWT_HEADER_NAME or JWT_HEADER_TYPE.
 */
export default fp(async function jwtPlugin (fastify) {
  const config = fastify.config
  const locations = config.JWT_TOKEN_LOCATION as TokenLocation[]
  const usesCookies = locations.includes('cookies')
  const usesHeaders = locations.includes('headers')
  const csrfProtect = usesCookies && config.JWT_COOKIE_CSRF_PROTECT
  const headerName = config.JWT_HEADER_NAME.toLowerCase()
  const headerType = config.JWT_HEADER_TYPE.toLowerCase()

  const requiredClaims = ['sub', 'jti', 'iat', 'exp', 'type']
  if (config.JWT_ISSUER !== undefined) requiredClaims.push('iss')
  if (config.JWT_AUDIENCE !== undefined) requiredClaims.push('aud')
  const jwtOptions = {
    sign: { algorithm: config.JWT_ALGORITHM },
    verify: {
      // RFC 8725 §3.1: never the algorithm the token names, only ours (no `none`, no HS512 for HS256).
      algorithms: [config.JWT_ALGORITHM],
      clockTolerance: LEEWAY_MS,
      requiredClaims,
      ...(config.JWT_ISSUER !== undefined ? { allowedIss: config.JWT_ISSUER } : {}),
      ...(config.JWT_AUDIENCE !== undefined ? { allowedAud: config.JWT_AUDIENCE } : {}),
      // A bounded cache of verified tokens (fast-jwt keys it by a hash of the token and
      // keeps an entry no longer than the token's exp/nbf allow, with the leeway): a
      // client presenting the same token again skips the HMAC. Revocation and claim
      // checks below run on every request, cached or not.
      cache: 10_000,
      cacheTTL: 600_000
    },
    decode: { complete: false }
  }

  // The previous key verifies in an encapsulated copy of the plugin (registered first,
  // so the two `jwt` decorators never meet); only the current key ever signs.
  let verifyPrevious: Verify | undefined
  const previousKey = config.JWT_SECRET_KEY_PREVIOUS
  if (previousKey !== undefined && previousKey !== config.JWT_SECRET_KEY) {
    await fastify.register(async function previousJwtKey (child) {
      await child.register(fastifyJwt, { ...jwtOptions, secret: previousKey })
      const jwt = child.jwt
      verifyPrevious = (token) => jwt.verify(token)
    })
  }
  await fastify.register(fastifyJwt, { ...jwtOptions, secret: config.JWT_SECRET_KEY })
  const verifyCurrent: Verify = (token) => fastify.jwt.verify(token)

  function verifySignature (token: string): unknown {
    try {
      return verifyCurrent(token)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (verifyPrevious === undefined || code !== 'FAST_JWT_INVALID_SIGNATURE') throw mapVerifyError(err)
    }
    try {
      return verifyPrevious(token)
    } catch (err) {
      throw mapVerifyError(err)
    }
  }

  /** Claim types fast-jwt does not check (it checks only exp/nbf/iat, iss, aud, sub). */
  function checkClaims (payload: unknown, type: TokenType): TokenClaims {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw invalid('The token is invalid')
    const c = payload as Record<string, unknown>
    const valid =
      isString(c.sub, 200) && isString(c.jti, 200) && isNumber(c.iat) && isNumber(c.exp) &&
      isOptional(c.nbf, isNumber) && (c.type === 'access' || c.type === 'refresh') &&
      isOptional(c.scope, (v) => typeof v === 'string' && v.length <= 2000) &&
      isOptional(c.sid, (v) => typeof v === 'string' && UUID.test(v)) &&
      isOptional(c.client_id, (v) => typeof v === 'string' && UUID.test(v)) &&
      isOptional(c.client_name, (v) => isString(v, 200)) &&
      isOptional(c.csrf, (v) => isString(v, 200)) &&
      // One issuer, one audience: we never issue array-valued iss or aud, so we accept none.
      (config.JWT_ISSUER === undefined || c.iss === config.JWT_ISSUER) &&
      (config.JWT_AUDIENCE === undefined || c.aud === config.JWT_AUDIENCE) &&
      // A user token belongs to a session, a service token to a client: exactly one.
      ((c.sid !== undefined) !== (c.client_id !== undefined)) &&
      (c.client_id === undefined || (c.sub === c.client_id && c.type === 'access'))
    if (!valid) throw invalid('The token is invalid')
    // RFC 8725 §3.12: a refresh token is not an access token, nor the reverse.
    if (c.type !== type) throw invalid(type === 'access' ? 'An access token is required' : 'A refresh token is required')
    return c as unknown as TokenClaims
  }

  function verify (token: string, type: TokenType): TokenClaims {
    if (token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) throw invalid('The token is invalid')
    const claims = checkClaims(verifySignature(token), type)
    if (!fastify.revocation.current) {
      throw new ApiError('SERVICE_UNAVAILABLE', 'Token revocations cannot be checked right now; retry later', { 'retry-after': '1' })
    }
    if (claims.sid !== undefined && fastify.revocation.isSessionRevoked(claims.sid)) {
      throw tokenError('AUTH_TOKEN_REVOKED', 'The token has been revoked', true)
    }
    if (claims.client_id !== undefined && fastify.revocation.isClientDisabled(claims.client_id)) {
      throw tokenError('AUTH_TOKEN_REVOKED', 'The token has been revoked', true)
    }
    return claims
  }

  /**
   * The header's token; undefined when the header is absent or empty ("no token here");
   * an error for another scheme, a missing token or extra parts (RFC 6750 §2.1,
   * scheme matched case-insensitively per RFC 7235 §2.1).
   */
  function fromHeader (request: FastifyRequest): string | undefined {
    const raw = request.headers[headerName]
    if (raw === undefined) return undefined
    const value = (Array.isArray(raw) ? raw.join(',') : raw).trim()
    if (value === '') return undefined
    const parts = value.split(/\s+/)
    if (headerType === '') {
      if (parts.length !== 1) throw invalid(`The ${config.JWT_HEADER_NAME} header must hold the bare token`)
      return parts[0]
    }
    if (parts.length !== 2 || parts[0]?.toLowerCase() !== headerType) {
      throw invalid(`The ${config.JWT_HEADER_NAME} header must be "${config.JWT_HEADER_TYPE} <token>"`)
    }
    return parts[1]
  }

  function fromCookie (request: FastifyRequest, type: TokenType): string | undefined {
    const value = request.cookies?.[type === 'access' ? COOKIE_NAMES.access : COOKIE_NAMES.refresh]
    return value === undefined || value === '' ? undefined : value
  }

  function read (request: FastifyRequest, type: TokenType): TokenClaims {
    // The first location holding a token decides: a bad header never falls back to a
    // cookie, or a stolen-cookie request could hide behind a junk header (and the reverse).
    for (const location of locations) {
      const token = location === 'headers' ? fromHeader(request) : fromCookie(request, type)
      if (token === undefined) continue
      const claims = verify(token, type)
      if (location === 'cookies' && csrfProtect && CSRF_METHODS.has(request.method)) {
        // Double submit (Flask-JWT-Extended): a cross-site form can send the cookie, but
        // cannot read the csrf cookie to copy its value into a header.
        const header = request.headers[CSRF_HEADER]
        if (typeof header !== 'string' || header === '' || claims.csrf === undefined || !constantTimeEqual(header, claims.csrf)) {
          throw tokenError('AUTH_CSRF_FAILED', 'Missing or wrong X-CSRF-TOKEN header', true)
        }
      }
      return claims
    }
    const where = locations.map((l) => l === 'headers' ? `the ${config.JWT_HEADER_NAME} header` : `the ${type === 'access' ? COOKIE_NAMES.access : COOKIE_NAMES.refresh} cookie`)
    throw tokenError('AUTH_MISSING_TOKEN', `Missing token (looked in ${where.join(', then ')})`, false)
  }

  function principalOf (claims: TokenClaims): Principal {
    const scopes = (claims.scope ?? '').split(' ').filter((s) => s !== '')
    if (claims.client_id !== undefined) {
      return { kind: 'client', clientId: claims.client_id, name: claims.client_name ?? '', scopes }
    }
    return { kind: 'user', userId: claims.sub, sessionId: claims.sid as string, scopes }
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
    usesCookies,
    usesHeaders,
    issueForSession ({ userId, sessionId, refreshJti, expiresAt }) {
      const now = Math.floor(Date.now() / 1000)
      // No token outlives its session (ASVS 10.4.8: absolute lifetime), which also
      // bounds how long a revoked session must stay in the revocation cache.
      const sessionEnd = Math.floor(expiresAt.getTime() / 1000)
      const accessExp = Math.min(now + config.JWT_ACCESS_TOKEN_EXPIRES, sessionEnd)
      const accessCsrf = csrfProtect ? randomUUID() : undefined
      const refreshCsrf = csrfProtect ? randomUUID() : undefined
      const scope = USER_SCOPES.join(' ')
      const accessToken = fastify.jwt.sign({ ...baseClaims(userId, 'access', now, accessExp), scope, sid: sessionId, ...(accessCsrf ? { csrf: accessCsrf } : {}) })
      const refresh = { ...baseClaims(userId, 'refresh', now, sessionEnd), jti: refreshJti, scope, sid: sessionId, ...(refreshCsrf ? { csrf: refreshCsrf } : {}) }
      const refreshToken = fastify.jwt.sign(refresh)
      return { accessToken, refreshToken, expiresIn: Math.max(0, accessExp - now), accessCsrf, refreshCsrf }
    },
    issueForClient (client, scopes) {
      const now = Math.floor(Date.now() / 1000)
      const exp = now + config.JWT_ACCESS_TOKEN_EXPIRES
      const accessToken = fastify.jwt.sign({
        ...baseClaims(client.id, 'access', now, exp),
        scope: scopes.join(' '),
        client_id: client.id,
        client_name: client.name
      })
      return { accessToken, expiresIn: config.JWT_ACCESS_TOKEN_EXPIRES }
    },
    read,
    verify,
    setCookies (reply, issued) {
      if (!usesCookies) return
      const base = { secure: config.JWT_COOKIE_SECURE, sameSite: config.JWT_COOKIE_SAMESITE.toLowerCase() as 'lax' | 'strict' | 'none' }
      // Session cookies, as Flask-JWT-Extended sets by default (JWT_SESSION_COOKIE).
      reply.setCookie(COOKIE_NAMES.access, issued.accessToken, { ...base, httpOnly: true, path: COOKIE_PATHS.access })
      reply.setCookie(COOKIE_NAMES.refresh, issued.refreshToken, { ...base, httpOnly: true, path: COOKIE_PATHS.refresh })
      if (issued.accessCsrf !== undefined) reply.setCookie(COOKIE_NAMES.accessCsrf, issued.accessCsrf, { ...base, httpOnly: false, path: COOKIE_PATHS.access })
      if (issued.refreshCsrf !== undefined) reply.setCookie(COOKIE_NAMES.refreshCsrf, issued.refreshCsrf, { ...base, httpOnly: false, path: COOKIE_PATHS.refresh })
    },
    clearCookies (reply) {
      if (!usesCookies) return
      const base = { secure: config.JWT_COOKIE_SECURE, sameSite: config.JWT_COOKIE_SAMESITE.toLowerCase() as 'lax' | 'strict' | 'none' }
      reply.clearCookie(COOKIE_NAMES.access, { ...base, httpOnly: true, path: COOKIE_PATHS.access })
      reply.clearCookie(COOKIE_NAMES.refresh, { ...base, httpOnly: true, path: COOKIE_PATHS.refresh })
      reply.clearCookie(COOKIE_NAMES.accessCsrf, { ...base, httpOnly: false, path: COOKIE_PATHS.access })
      reply.clearCookie(COOKIE_NAMES.refreshCsrf, { ...base, httpOnly: false, path: COOKIE_PATHS.refresh })
    }
  }
  fastify.decorate('tokens', tokens)

  fastify.decorateRequest('principal', null as never)

  fastify.decorate('authenticate', function authenticate (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) {
    let principal: Principal
    try {
      principal = principalOf(read(request, 'access'))
    } catch (err) {
      done(err as Error)
      return
    }
    request.principal = principal
    done()
  })

  fastify.decorate('requireScope', function requireScope (...scopes: string[]): Hook {
    return function checkScope (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) {
      const principal = request.principal as Principal | null
      // A route that forgot fastify.authenticate must fail closed, not open.
      if (!principal) {
        done(tokenError('AUTH_MISSING_TOKEN', 'Missing token', false))
        return
      }
      const missing = scopes.filter((s) => !principal.scopes.includes(s))
      if (missing.length > 0) {
        done(new ApiError('AUTH_INSUFFICIENT_SCOPE', `Requires scope ${missing.join(' ')}`, {
          'www-authenticate': 'Bearer realm="api", error="insufficient_scope"'
        }))
        return
      }
      done()
    }
  })
}, { name: 'jwt', dependencies: ['env', 'errors', 'cookie', 'revocation'] })
