import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import { ErrorRef, NoQuery } from '../../schemas/common.js'
import { BEARER, authenticated } from '../../schemas/openapi.js'
import { CredentialsSchema, MeSchema, RegisteredSchema, TokenPairSchema, type TokenPair } from '../../schemas/auth.js'
import { ApiError } from '../../lib/errors.js'
import { hashPassword, verifyDummy, verifyPassword, warmUpDummyHash } from '../../lib/passwords.js'
import { createUser, findUserByEmail, findUserById } from '../../lib/repositories/users.js'
import { createSession, revokeSession, rotateRefreshToken } from '../../lib/repositories/sessions.js'
import type { IssuedTokens } from '../../plugins/jwt.js'
import tokenRoutes from './token.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const REVOKED_CHALLENGE = { 'www-authenticate': 'Bearer realm="api", error="invalid_token"' }

const unauthorized = { 401: ErrorRef }
const invalidBody = { 400: ErrorRef, 413: ErrorRef, 415: ErrorRef, 429: ErrorRef, 503: ErrorRef }
// No query parameters anywhere (SPEC §2: an unknown one is a 400, tokens never travel in URLs).
// Routes without a body accept none, or an empty JSON object.
const NoBody = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })])

/** Accounts (SPEC §4): register, login, refresh with rotation, logout, me. */
const auth: FastifyPluginAsyncTypebox = async function auth (fastify) {
  const config = fastify.config
  const tokens = fastify.tokens
  const authRateLimit = { rateLimit: { max: config.RATE_LIMIT_AUTH_MAX, timeWindow: 60_000 } }

  // The dummy hash is computed now, not by the first unknown-email login (whose
  // extra time would tell that the email is unknown).
  await warmUpDummyHash()

  function sendTokens (reply: FastifyReply, issued: IssuedTokens): TokenPair {
    tokens.setCookies(reply, issued)
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    // With cookies as the only location, scripts never see a token (SPEC §4).
    const inBody = tokens.usesHeaders ? { access_token: issued.accessToken, refresh_token: issued.refreshToken } : {}
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
      const email = request.body.email.trim()
      const hash = await hashPassword(request.body.password)
      const user = await createUser(fastify.pg, email, hash)
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
    const user = await findUserByEmail(fastify.pg, request.body.email.trim())
    // Same answer, same work (an argon2 verification) whether or not the email exists.
    const ok = user ? await verifyPassword(user.password_hash, request.body.password) : await verifyDummy(request.body.password)
    if (!user || !ok) {
      request.log.info({ event: 'login_failed' }, 'login refused')
      throw new ApiError('AUTH_INVALID_CREDENTIALS', 'Wrong email or password')
    }
    const refreshJti = randomUUID()
    const session = await createSession(fastify.pg, user.id, refreshJti, config.JWT_REFRESH_TOKEN_EXPIRES)
    request.log.info({ userId: user.id, sessionId: session.id }, 'logged in')
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
    const claims = tokens.read(request, 'refresh')
    const sessionId = claims.sid as string
    if (!UUID.test(claims.jti) || !UUID.test(claims.sub)) throw new ApiError('AUTH_INVALID_TOKEN', 'The token is invalid', REVOKED_CHALLENGE)
    const newJti = randomUUID()
    const result = await rotateRefreshToken(fastify.pg, sessionId, claims.sub, claims.jti, newJti)
    switch (result.status) {
      case 'rotated':
        return sendTokens(reply, tokens.issueForSession({ userId: claims.sub, sessionId, refreshJti: newJti, expiresAt: result.session.expires_at }))
      case 'reused':
        // Refused on this replica at once; the NOTIFY sent with the revocation tells the others.
        fastify.revocation.apply({ t: 'session', id: sessionId, exp: Math.ceil(result.session.expires_at.getTime() / 1000) })
        request.log.warn({ userId: claims.sub, sessionId }, 'refresh token reused: session revoked')
        throw new ApiError('AUTH_TOKEN_REVOKED', 'This refresh token was already used; the session is revoked', REVOKED_CHALLENGE)
      case 'revoked':
        throw new ApiError('AUTH_TOKEN_REVOKED', 'The token has been revoked', REVOKED_CHALLENGE)
      case 'expired':
        throw new ApiError('AUTH_TOKEN_EXPIRED', 'The session has expired', REVOKED_CHALLENGE)
      default:
        throw new ApiError('AUTH_INVALID_TOKEN', 'The token is invalid', REVOKED_CHALLENGE)
    }
  })

  fastify.post('/logout', {
    onRequest: fastify.authenticate,
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
      throw new ApiError('AUTH_INSUFFICIENT_SCOPE', 'A service token has no session to log out of; disable the client instead', {
        'www-authenticate': 'Bearer realm="api", error="insufficient_scope"'
      })
    }
    const session = await revokeSession(fastify.pg, principal.sessionId, 'logout')
    if (session) fastify.revocation.apply({ t: 'session', id: session.id, exp: Math.ceil(session.expires_at.getTime() / 1000) })
    request.log.info({ userId: principal.userId, sessionId: principal.sessionId }, 'logged out')
    tokens.clearCookies(reply)
    return reply.code(204).send(null)
  })

  fastify.get('/me', {
    onRequest: fastify.authenticate,
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
    const user = await findUserById(fastify.pg, principal.userId)
    if (!user) throw new ApiError('AUTH_INVALID_TOKEN', 'The account no longer exists', REVOKED_CHALLENGE)
    return { id: user.id, email: user.email, scopes: principal.scopes, created_at: user.created_at.toISOString() }
  })

  await fastify.register(tokenRoutes)
}

export default auth
