import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import { ErrorRef, NoBody, NoQuery, isUuid } from '../../schemas/common.js'
import { BEARER, authenticated } from '../../schemas/openapi.js'
import { AUTH_RATE_LIMIT_WINDOW, CredentialsSchema, MeSchema, RegisteredSchema, TokenPairSchema, type TokenPair } from '../../schemas/auth.js'
import { credentialsOf } from '../../lib/credentials.js'
import { ApiError, insufficientScope, invalidToken, tokenError } from '../../lib/errors.js'
import { hashPassword, verifyDummy, verifyPassword, warmUpDummyHash } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import type { IssuedTokens } from '../../plugins/app/auth/tokens.js'
import tokenRoutes from './token.js'
import introspectionRoutes from './introspection.js'

const unauthorized = { 401: ErrorRef }
const invalidBody = { 400: ErrorRef, 413: ErrorRef, 415: ErrorRef, 429: ErrorRef, 503: ErrorRef }
// No query parameters anywhere (an unknown one is a 400; tokens never travel in URLs).

/** Accounts (docs/auth.md): register, login, refresh with rotation, logout, me. */
const auth: FastifyPluginAsyncTypebox = async function auth (fastify) {
  const config = fastify.config
  const { tokens, authCookies, repos } = fastify
  const authRateLimit = { rateLimit: { max: config.RATE_LIMIT_AUTH_MAX, timeWindow: AUTH_RATE_LIMIT_WINDOW } }

  // The dummy hash is computed now, not by the first unknown-email login (whose
  // extra time would tell that the email is unknown).
  await warmUpDummyHash()

  function sendTokens (reply: FastifyReply, issued: IssuedTokens): TokenPair {
    authCookies.set(reply, issued)
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    // With cookies as the only location, scripts never see a token.
    const inBody = config.JWT_TOKEN_LOCATION.includes('headers') ? { access_token: issued.accessToken, refresh_token: issued.refreshToken } : {}
    return { ...inBody, token_type: 'Bearer', expires_in: issued.expiresIn }
  }

  if (config.REGISTRATION_ENABLED) {
    fastify.post('/register', {
      config: authRateLimit,
      schema: {
        tags: ['auth'],
        summary: 'Create an account',
        querystring: NoQuery,
        body: CredentialsSchema,
        response: { 201: RegisteredSchema, 409: ErrorRef, ...invalidBody }
      }
    }, async function register (request, reply) {
      const { email, password } = credentialsOf(request.body)
      const hash = await hashPassword(password)
      const user = await repos.users.create(email, hash)
      if (!user) throw new ApiError('CONFLICT', 'An account with this email already exists')
      request.log.info({ userId: user.id }, 'account registered')
      return reply.code(201).send({ id: user.id, email: user.email, created_at: user.created_at.toISOString() })
    })
  }

  fastify.post('/login', {
    config: authRateLimit,
    schema: {
      tags: ['auth'],
      summary: 'Log in: a new session with an access and a refresh token',
      querystring: NoQuery,
      body: CredentialsSchema,
      response: { 200: TokenPairSchema, ...unauthorized, ...invalidBody }
    }
  }, async function login (request, reply) {
    const { email, password } = credentialsOf(request.body)
    // Counted before the password is looked at, for known and unknown emails alike
    // (docs/edge.md, "Login throttling"): once throttled, even the right password waits.
    const verdict = await fastify.loginThrottle.attempt(email)
    if (!verdict.allowed) {
      securityEvent(request, 'auth.login.throttled', { retryAfter: verdict.retryAfterSeconds })
      throw new ApiError('RATE_LIMITED', `Too many failed logins for this account; retry in ${verdict.retryAfterSeconds} s`, { 'retry-after': String(verdict.retryAfterSeconds) })
    }
    const user = await repos.users.findByEmail(email)
    // Same answer, same work (an argon2 verification) whether or not the email exists.
    const ok = user ? await verifyPassword(user.password_hash, password) : await verifyDummy(password)
    if (!user || !ok) {
      securityEvent(request, 'auth.login.failed', { userId: user?.id })
      throw new ApiError('AUTH_INVALID_CREDENTIALS', 'Wrong email or password')
    }
    await fastify.loginThrottle.succeeded(email)
    const refreshJti = randomUUID()
    const session = await repos.sessions.create(user.id, refreshJti, config.JWT_REFRESH_TOKEN_EXPIRES)
    securityEvent(request, 'auth.login.succeeded', { userId: user.id, sessionId: session.id })
    return sendTokens(reply, tokens.issueForSession({ userId: user.id, sessionId: session.id, refreshJti, expiresAt: session.expires_at }))
  })

  fastify.post('/refresh', {
    schema: {
      tags: ['auth'],
      summary: 'Exchange the refresh token for new tokens (the old refresh token is spent)',
      description: 'The refresh token is presented like an access token: in the header, or as refresh_token_cookie with X-CSRF-TOKEN equal to csrf_refresh_token.',
      security: [{ [BEARER]: [] }],
      querystring: NoQuery,
      body: NoBody,
      response: { 200: TokenPairSchema, ...unauthorized, ...invalidBody }
    }
  }, async function refresh (request, reply) {
    const claims = fastify.readToken(request, 'refresh')
    const sessionId = claims.sid
    if (sessionId === undefined || !isUuid(claims.jti) || !isUuid(claims.sub)) throw invalidToken('The token is invalid')
    const newJti = randomUUID()
    const result = await repos.sessions.rotate(sessionId, claims.sub, claims.jti, newJti)
    switch (result.status) {
      case 'rotated':
        securityEvent(request, 'auth.refresh.rotated', { userId: claims.sub, sessionId })
        return sendTokens(reply, tokens.issueForSession({ userId: claims.sub, sessionId, refreshJti: newJti, expiresAt: result.session.expires_at }))
      case 'reused':
        // Refused on this replica at once; the NOTIFY sent with the revocation tells the others.
        fastify.revocation.apply({ t: 'session', id: sessionId, exp: Math.ceil(result.session.expires_at.getTime() / 1000) })
        securityEvent(request, 'auth.refresh.reuse_detected', { userId: claims.sub, sessionId, revokedSessionId: sessionId })
        throw tokenError('AUTH_TOKEN_REVOKED', 'This refresh token was already used; the session is revoked', true)
      case 'revoked':
        throw tokenError('AUTH_TOKEN_REVOKED', 'The token has been revoked', true)
      case 'expired':
        throw tokenError('AUTH_TOKEN_EXPIRED', 'The session has expired', true)
      default:
        throw invalidToken('The token is invalid')
    }
  })

  fastify.post('/logout', {
    preParsing: fastify.authenticate,
    schema: {
      tags: ['auth'],
      summary: 'Revoke the session of the access token and clear the cookies',
      security: authenticated(),
      querystring: NoQuery,
      body: NoBody,
      response: { 204: Type.Null({ description: 'Logged out' }), ...unauthorized, 403: ErrorRef, ...invalidBody }
    }
  }, async function logout (request, reply) {
    const principal = request.principal
    if (principal.kind !== 'user') {
      throw insufficientScope('A service token has no session to log out of; disable the client instead')
    }
    const session = await repos.sessions.revoke(principal.sessionId, 'logout')
    if (session) fastify.revocation.apply({ t: 'session', id: session.id, exp: Math.ceil(session.expires_at.getTime() / 1000) })
    securityEvent(request, 'auth.logout', { userId: principal.userId, sessionId: principal.sessionId })
    authCookies.clear(reply)
    return reply.code(204).send(null)
  })

  fastify.get('/me', {
    preParsing: fastify.authenticate,
    schema: {
      tags: ['auth'],
      summary: 'The authenticated user or service client',
      security: authenticated(),
      querystring: NoQuery,
      response: { 200: MeSchema, ...unauthorized, 400: ErrorRef, 429: ErrorRef, 503: ErrorRef }
    }
  }, async function me (request) {
    const principal = request.principal
    if (principal.kind === 'client') {
      return { client_id: principal.clientId, name: principal.name, scopes: principal.scopes }
    }
    const user = await repos.users.findById(principal.userId)
    if (!user) throw invalidToken('The account no longer exists')
    return { id: user.id, email: user.email, scopes: principal.scopes, created_at: user.created_at.toISOString() }
  })

  await fastify.register(tokenRoutes)
  await fastify.register(introspectionRoutes)
}

export default auth
