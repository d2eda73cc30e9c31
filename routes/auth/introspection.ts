import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import formbody from '@fastify/formbody'
import type { FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { ErrorRef, NoQuery, isUuid } from '../../schemas/common.js'
import { FORM_OR_JSON } from '../../schemas/openapi.js'
import { AUTH_RATE_LIMIT_WINDOW, IntrospectionSchema, OAuthErrorSchema, TokenInspectionRequestSchema } from '../../schemas/auth.js'
import type { TokenClaims, TokenType } from '../../schemas/tokens.js'
import { ApiError } from '../../lib/errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { invalidRequest, oauthErrorHandler } from '../../plugins/app/auth/oauth-errors.js'

type Body = Static<typeof TokenInspectionRequestSchema>

/**
 * POST /auth/introspect (RFC 7662) and POST /auth/revoke (RFC 7009), for service
 * clients authenticated as on /auth/token (docs/contract.md, "Introspection and
 * revocation"), with the same RFC 6749 §5.2 error bodies.
 */
const introspection: FastifyPluginAsyncTypebox = async function introspection (fastify) {
  await fastify.register(formbody)
  fastify.setErrorHandler(oauthErrorHandler)
  const { tokens, repos } = fastify
  const rateLimit = { max: fastify.config.RATE_LIMIT_AUTH_MAX, timeWindow: AUTH_RATE_LIMIT_WINDOW }
  const errors = { 400: OAuthErrorSchema, 401: OAuthErrorSchema, 413: ErrorRef, 415: ErrorRef, 429: ErrorRef, 503: ErrorRef }

  /** The body without empty parameters (RFC 6749 §3.1), after the caller authenticated; its token. */
  async function authenticated (request: FastifyRequest) {
    const body = Object.fromEntries(Object.entries((request.body ?? {}) as Body).filter(([, v]) => v !== '')) as Body
    const client = await fastify.clientAuth.authenticate(request, body)
    if (body.token === undefined) throw invalidRequest('token is required')
    return { client, token: body.token, hint: body.token_type_hint }
  }

  /**
   * The claims of a token of ours that is valid now, whoever holds it, or undefined.
   * A refresh token is valid only while it is its session's current one (a spent one
   * would revoke the session if used). Only a revocation feed that is down is an error.
   */
  async function validClaims (token: string, hint: string | undefined): Promise<{ claims: TokenClaims, type: TokenType } | undefined> {
    for (const type of hint === 'refresh_token' ? ['refresh', 'access'] as const : ['access', 'refresh'] as const) {
      let claims: TokenClaims
      try {
        claims = tokens.verify(token, type)
      } catch (err) {
        if (err instanceof ApiError && err.code === 'SERVICE_UNAVAILABLE') throw err
        continue
      }
      if (type === 'refresh' && !(claims.sid !== undefined && isUuid(claims.jti) && await repos.sessions.isCurrentRefresh(claims.sid, claims.jti))) return undefined
      return { claims, type }
    }
    return undefined
  }

  fastify.post('/introspect', {
    config: { rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'Token introspection (RFC 7662), for service clients',
      description: 'application/x-www-form-urlencoded or JSON; client authentication as on /auth/token. Any token that is not valid now is {"active": false}.',
      querystring: NoQuery,
      consumes: FORM_OR_JSON,
      body: TokenInspectionRequestSchema,
      response: { 200: IntrospectionSchema, ...errors }
    }
  }, async function introspect (request, reply) {
    const { token, hint } = await authenticated(request)
    reply.header('cache-control', 'no-store')
    const valid = await validClaims(token, hint)
    if (!valid) return { active: false }
    const { claims, type } = valid
    return {
      active: true,
      scope: claims.scope ?? '',
      ...(claims.client_id !== undefined ? { client_id: claims.client_id } : {}),
      sub: claims.sub,
      exp: claims.exp,
      iat: claims.iat,
      ...(claims.iss !== undefined ? { iss: claims.iss } : {}),
      token_type: type === 'access' ? 'access_token' as const : 'refresh_token' as const
    }
  })

  fastify.post('/revoke', {
    config: { rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'Token revocation (RFC 7009), for service clients',
      description: 'Revokes a token issued to the calling client. An unknown, invalid or expired token is 200 too; a valid token of another client or of a user is 400 invalid_request.',
      querystring: NoQuery,
      consumes: FORM_OR_JSON,
      body: TokenInspectionRequestSchema,
      response: { 200: Type.Null({ description: 'Revoked, or nothing to revoke (RFC 7009 §2.2); an empty body' }), ...errors }
    }
  }, async function revoke (request, reply) {
    const { client, token, hint } = await authenticated(request)
    const valid = await validClaims(token, hint)
    if (valid !== undefined) {
      const { claims } = valid
      // RFC 7009 §2.1: a client revokes only the tokens issued to it.
      if (claims.client_id !== client.id || !isUuid(claims.jti)) throw invalidRequest('The token was not issued to this client')
      await repos.revokedTokens.revoke(claims.jti, client.id, new Date(claims.exp * 1000))
      // Refused here at once; the NOTIFY sent with the revocation tells the other replicas.
      fastify.revocation.apply({ t: 'token', id: claims.jti, exp: Math.ceil(claims.exp) })
      securityEvent(request, 'token.revoked', { clientId: client.id, jti: claims.jti })
    }
    // No payload at all (not the JSON null): RFC 7009 §2.2 answers with the status alone.
    return reply.code(200).send(undefined as unknown as null)
  })
}

export default introspection
