import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { tokenError } from '../../../lib/errors.js'
import type { TokenClaims, TokenType } from '../../../schemas/tokens.js'
import type { IssuedTokens } from './tokens.js'

/** Flask-JWT-Extended's names, so that clients of the Flask service keep working. */
export const COOKIE_NAMES = {
  access: 'access_token_cookie',
  refresh: 'refresh_token_cookie',
  accessCsrf: 'csrf_access_token',
  refreshCsrf: 'csrf_refresh_token'
} as const
const PATHS = { access: '/', refresh: '/auth' } as const
const CSRF_HEADER = 'x-csrf-token'
const CSRF_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export interface AuthCookies {
  /** True when cookies are a token location: otherwise none is ever set or read. */
  readonly enabled: boolean
  /** The token of `type` from its cookie; undefined when absent or empty. */
  read: (request: FastifyRequest, type: TokenType) => string | undefined
  /** Throws AUTH_CSRF_FAILED unless a state-changing request repeats the token's csrf claim in X-CSRF-TOKEN. */
  checkCsrf: (request: FastifyRequest, claims: TokenClaims) => void
  set: (reply: FastifyReply, tokens: IssuedTokens) => void
  clear: (reply: FastifyReply) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    authCookies: AuthCookies
  }
}

function constantTimeEqual (a: string, b: string): boolean {
  // Hashing first gives equal lengths, so timingSafeEqual never throws or leaks the length.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

/**
 * The token cookies (HttpOnly) and their double-submit CSRF cookies (readable by
 * the page's script), as Flask-JWT-Extended sets them: a cross-site form can send
 * the cookie but cannot read the csrf cookie to copy it into the header.
 */
export default fp(async function authCookiesPlugin (fastify) {
  const config = fastify.config
  const enabled = config.JWT_TOKEN_LOCATION.includes('cookies')
  const csrfProtect = enabled && config.JWT_COOKIE_CSRF_PROTECT
  const base = { secure: config.JWT_COOKIE_SECURE, sameSite: config.JWT_COOKIE_SAMESITE.toLowerCase() as 'lax' | 'strict' | 'none' }
  const cookies = [
    { name: COOKIE_NAMES.access, httpOnly: true, path: PATHS.access },
    { name: COOKIE_NAMES.refresh, httpOnly: true, path: PATHS.refresh },
    { name: COOKIE_NAMES.accessCsrf, httpOnly: false, path: PATHS.access },
    { name: COOKIE_NAMES.refreshCsrf, httpOnly: false, path: PATHS.refresh }
  ] as const

  const authCookies: AuthCookies = {
    enabled,
    read (request, type) {
      const value = request.cookies?.[type === 'access' ? COOKIE_NAMES.access : COOKIE_NAMES.refresh]
      return value === undefined || value === '' ? undefined : value
    },
    checkCsrf (request, claims) {
      if (!csrfProtect || !CSRF_METHODS.has(request.method)) return
      const header = request.headers[CSRF_HEADER]
      if (typeof header !== 'string' || header === '' || claims.csrf === undefined || !constantTimeEqual(header, claims.csrf)) {
        throw tokenError('AUTH_CSRF_FAILED', 'Missing or wrong X-CSRF-TOKEN header', true)
      }
    },
    set (reply, issued) {
      if (!enabled) return
      // Session cookies, as Flask-JWT-Extended sets by default (JWT_SESSION_COOKIE).
      const values = [issued.accessToken, issued.refreshToken, issued.accessCsrf, issued.refreshCsrf]
      cookies.forEach(({ name, httpOnly, path }, i) => {
        const value = values[i]
        if (value !== undefined) reply.setCookie(name, value, { ...base, httpOnly, path })
      })
    },
    clear (reply) {
      if (!enabled) return
      for (const { name, httpOnly, path } of cookies) reply.clearCookie(name, { ...base, httpOnly, path })
    }
  }
  fastify.decorate('authCookies', authCookies)
}, { name: 'auth-cookies', dependencies: ['config', 'cookie'] })
