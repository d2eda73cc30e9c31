import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, RequestPayload } from 'fastify'
import { ApiError, insufficientScope, invalidToken, tokenError } from '../../../lib/errors.js'
import type { Principal, TokenClaims, TokenType } from '../../../schemas/tokens.js'

/**
 * Authentication runs in preParsing: after the rate limiter (an onRequest hook), so a
 * failed authentication is counted, and before the body is read, so an anonymous or
 * under-privileged caller gets 401/403, never a message about our schema. A callback
 * hook: its work is synchronous, and an async hook costs a promise per request.
 */
type Hook = (request: FastifyRequest, reply: FastifyReply, payload: RequestPayload, done: (err: Error | null, payload?: RequestPayload) => void) => void

declare module 'fastify' {
  interface FastifyInstance {
    /** preParsing hook: 401 unless a valid access token is presented; sets request.principal. */
    authenticate: Hook
    /** preParsing hook, after authenticate: 403 AUTH_INSUFFICIENT_SCOPE unless the principal holds every scope named. */
    requireScope: (...scopes: string[]) => Hook
    /** Reads and verifies the token of `type` from the request's token locations. */
    readToken: (request: FastifyRequest, type: TokenType) => TokenClaims
  }
  interface FastifyRequest {
    /** Set by fastify.authenticate; read it only on routes that run that hook. */
    principal: Principal
  }
}

function principalOf (claims: TokenClaims): Principal {
  const scopes = (claims.scope ?? '').split(' ').filter((s) => s !== '')
  if (claims.client_id !== undefined) return { kind: 'client', clientId: claims.client_id, name: claims.client_name ?? '', scopes }
  return { kind: 'user', userId: claims.sub, sessionId: claims.sid, scopes }
}

/**
 * Finds the token in the locations of JWT_TOKEN_LOCATION, in order (docs/auth.md):
 * the first location that holds one decides, and a bad token there never falls back
 * to the next, or a stolen-cookie request could hide behind a junk header.
 */
export default fp(async function authenticatePlugin (fastify) {
  const config = fastify.config
  const locations = config.JWT_TOKEN_LOCATION
  const headerName = config.JWT_HEADER_NAME.toLowerCase()
  const headerType = config.JWT_HEADER_TYPE.toLowerCase()
  const { tokens, authCookies } = fastify

  /**
   * The header's token; undefined when the header is absent or empty ("no token here");
   * an error for another scheme, a missing token or extra parts (RFC 6750 §2.1, the
   * scheme matched case-insensitively per RFC 7235 §2.1).
   */
  function fromHeader (request: FastifyRequest): string | undefined {
    const raw = request.headers[headerName]
    if (raw === undefined) return undefined
    if (sentTwice(request)) {
      throw new ApiError('BAD_REQUEST', `Send one ${config.JWT_HEADER_NAME} header, not several`, { 'www-authenticate': 'Bearer realm="api", error="invalid_request"' })
    }
    const value = (Array.isArray(raw) ? raw.join(',') : raw).trim()
    if (value === '') return undefined
    const parts = value.split(/\s+/)
    if (headerType === '') {
      if (parts.length !== 1) throw invalidToken(`The ${config.JWT_HEADER_NAME} header must hold the bare token`)
      return parts[0]
    }
    if (parts.length !== 2 || parts[0]?.toLowerCase() !== headerType) {
      throw invalidToken(`The ${config.JWT_HEADER_NAME} header must be "${config.JWT_HEADER_TYPE} <token>"`)
    }
    return parts[1]
  }

  /**
   * Two token headers are ambiguous (RFC 9110 §5.3: the field is not a list), and
   * refused rather than guessed (RFC 6750 §3.1 invalid_request): Node keeps the first
   * Authorization and joins other names with ", ", a proxy may use the last one.
   */
  function sentTwice (request: FastifyRequest): boolean {
    const fields = request.raw.rawHeaders
    let seen = 0
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i]?.toLowerCase() === headerName && ++seen > 1) return true
    }
    return false
  }

  function readToken (request: FastifyRequest, type: TokenType): TokenClaims {
    for (const location of locations) {
      const token = location === 'headers' ? fromHeader(request) : authCookies.read(request, type)
      if (token === undefined) continue
      const claims = tokens.verify(token, type)
      if (location === 'cookies') authCookies.checkCsrf(request, claims)
      return claims
    }
    const cookie = type === 'access' ? 'access_token_cookie' : 'refresh_token_cookie'
    const where = locations.map((l) => l === 'headers' ? `the ${config.JWT_HEADER_NAME} header` : `the ${cookie} cookie`)
    throw tokenError('AUTH_MISSING_TOKEN', `Missing token (looked in ${where.join(', then ')})`, false)
  }

  fastify.decorate('readToken', readToken)
  fastify.decorateRequest('principal', null as never)

  fastify.decorate('authenticate', function authenticate (request: FastifyRequest, _reply: FastifyReply, payload: RequestPayload, done: (err: Error | null, payload?: RequestPayload) => void) {
    let principal: Principal
    try {
      principal = principalOf(readToken(request, 'access'))
    } catch (err) {
      done(err as Error)
      return
    }
    request.principal = principal
    done(null, payload)
  })

  fastify.decorate('requireScope', function requireScope (...scopes: string[]): Hook {
    return function checkScope (request, _reply, payload, done) {
      const principal = request.principal as Principal | null
      // A route that forgot fastify.authenticate must fail closed, not open.
      if (!principal) return done(tokenError('AUTH_MISSING_TOKEN', 'Missing token', false))
      const missing = scopes.filter((s) => !principal.scopes.includes(s))
      if (missing.length > 0) return done(insufficientScope(`Requires scope ${missing.join(' ')}`))
      done(null, payload)
    }
  })
}, { name: 'authenticate', dependencies: ['config', 'tokens', 'auth-cookies'] })
