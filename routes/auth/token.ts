import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import formbody from '@fastify/formbody'
import { ErrorRef, NoQuery } from '../../schemas/common.js'
import { FORM_OR_JSON } from '../../schemas/openapi.js'
import { AUTH_RATE_LIMIT_WINDOW, OAuthErrorSchema, SCOPE_TOKEN, TokenRequestSchema, TokenResponseSchema } from '../../schemas/auth.js'
import { OAuthFailure, invalidRequest, oauthErrorHandler } from '../../plugins/app/auth/oauth-errors.js'
import { securityEvent } from '../../lib/security-events.js'

/**
 * POST /auth/token: the OAuth 2.0 client credentials grant (RFC 6749 §4.4), for
 * service-to-service calls, with client authentication by secret or by client
 * assertion (plugins/app/auth/client-auth.ts). Errors use the RFC's bodies so that
 * stock OAuth client libraries understand them; body size, media type and rate-limit
 * errors keep the service's common shape (they happen before the grant is looked at).
 */
const token: FastifyPluginAsyncTypebox = async function token (fastify) {
  // Form bodies are parsed here only: every other route accepts JSON alone.
  await fastify.register(formbody)
  fastify.setErrorHandler(oauthErrorHandler)

  fastify.post('/token', {
    config: { rateLimit: { max: fastify.config.RATE_LIMIT_AUTH_MAX, timeWindow: AUTH_RATE_LIMIT_WINDOW } },
    // The grant type is looked at before the other parameters (RFC 6749 §5.2): a
    // password grant is unsupported, whatever fields come with it.
    preValidation (request, _reply, done) {
      const grant = (request.body as Record<string, unknown> | null | undefined)?.grant_type
      if (typeof grant === 'string' && grant !== '' && grant !== 'client_credentials') {
        done(new OAuthFailure({ error: 'unsupported_grant_type', error_description: 'Only client_credentials is supported' }, 400))
        return
      }
      done()
    },
    schema: {
      tags: ['auth'],
      summary: 'OAuth 2.0 client credentials grant (service clients)',
      description: 'application/x-www-form-urlencoded or JSON. Client authentication by HTTP Basic, client_id/client_secret in the body, or a client assertion (private_key_jwt, a federated identity).',
      querystring: NoQuery,
      consumes: FORM_OR_JSON,
      body: TokenRequestSchema,
      response: { 200: TokenResponseSchema, 400: OAuthErrorSchema, 401: OAuthErrorSchema, 413: ErrorRef, 415: ErrorRef, 429: ErrorRef, 503: ErrorRef }
    }
  }, async function issueToken (request, reply) {
    // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    const body = Object.fromEntries(Object.entries(request.body ?? {}).filter(([, v]) => v !== '')) as typeof request.body
    if (body.grant_type === undefined) throw invalidRequest('grant_type is required')

    const client = await fastify.clientAuth.authenticate(request, body)

    let scopes = client.scopes
    const requested = body.scope?.split(' ').filter((s) => s !== '')
    if (requested !== undefined && requested.length > 0) {
      const unknown = requested.filter((s) => !SCOPE_TOKEN.test(s) || !client.scopes.includes(s))
      if (unknown.length > 0) {
        throw new OAuthFailure({ error: 'invalid_scope', error_description: 'The requested scope exceeds the client\'s scopes' }, 400)
      }
      scopes = [...new Set(requested)]
    }

    const issued = fastify.tokens.issueForClient({ id: client.id, name: client.name }, scopes)
    securityEvent(request, 'client.token.issued', { clientId: client.id, method: client.method, scope: scopes.join(' ') })
    return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send({
      access_token: issued.accessToken,
      token_type: 'Bearer' as const,
      expires_in: issued.expiresIn,
      scope: scopes.join(' ')
    })
  })
}

export default token
