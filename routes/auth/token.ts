import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import formbody from '@fastify/formbody'
import { ErrorRef, NoQuery } from '../../schemas/common.js'
import { AUTH_RATE_LIMIT_WINDOW, OAuthErrorSchema, SCOPE_TOKEN, TokenRequestSchema, TokenResponseSchema, type OAuthError } from '../../schemas/auth.js'
import { isUuid } from '../../schemas/common.js'
import { verifyDummy, verifyPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'

/** An RFC 6749 §5.2 error: sent as it is, not in the service's common error shape. */
class OAuthFailure extends Error {
  constructor (readonly body: OAuthError, readonly statusCode: number, readonly headers: Record<string, string> = {}) {
    super(body.error_description ?? body.error)
  }
}

const invalidRequest = (description: string) => new OAuthFailure({ error: 'invalid_request', error_description: description }, 400)

interface ClientCredentials { clientId: string, clientSecret: string, basic: boolean }

/** RFC 6749 §2.3.1: the id and secret are form-url-encoded before Basic encoding. */
function formDecode (value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}

/**
 * The client's credentials, from HTTP Basic or from the body; never both (RFC 6749
 * §2.3: one authentication method per request).
 */
function credentialsOf (request: FastifyRequest, body: { client_id?: string, client_secret?: string }): ClientCredentials {
  const header = request.headers.authorization?.trim()
  const match = header !== undefined ? /^basic(?:\s+(\S*))?$/i.exec(header) : null
  if (match) {
    const basicFailure = new OAuthFailure({ error: 'invalid_client', error_description: 'Malformed HTTP Basic credentials' }, 401, { 'www-authenticate': 'Basic realm="api", charset="UTF-8"' })
    if (body.client_secret !== undefined) throw invalidRequest('Use one client authentication method: HTTP Basic or the body, not both')
    const encoded = match[1] ?? ''
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw basicFailure
    const decoded = Buffer.from(encoded, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) throw basicFailure
    const clientId = formDecode(decoded.slice(0, colon))
    const clientSecret = formDecode(decoded.slice(colon + 1))
    if (clientId === undefined || clientSecret === undefined) throw basicFailure
    if (body.client_id !== undefined && body.client_id !== clientId) throw invalidRequest('client_id differs from the HTTP Basic credentials')
    return { clientId, clientSecret, basic: true }
  }
  if (body.client_id === undefined || body.client_secret === undefined) {
    throw new OAuthFailure({ error: 'invalid_client', error_description: 'Client authentication is required' }, 401)
  }
  return { clientId: body.client_id, clientSecret: body.client_secret, basic: false }
}

/**
 * POST /auth/token: the OAuth 2.0 client credentials grant (RFC 6749 §4.4), for
 * service-to-service calls. Errors use the RFC's bodies so that stock OAuth client
 * libraries understand them; body size, media type and rate-limit errors keep the
 * service's common shape (they happen before the grant is looked at).
 */
const token: FastifyPluginAsyncTypebox = async function token (fastify) {
  // Form bodies are parsed here only: every other route accepts JSON alone.
  await fastify.register(formbody)

  fastify.setErrorHandler(function oauthErrors (error: FastifyError | OAuthFailure, _request, reply: FastifyReply) {
    if (error instanceof OAuthFailure) {
      return reply.code(error.statusCode).headers(error.headers).header('cache-control', 'no-store').send(error.body)
    }
    // A body that is not a valid request (schema, JSON syntax, duplicated or unknown
    // parameters) is the grant's invalid_request; anything else goes to the common handler.
    if ((error as FastifyError).validation || error.statusCode === 400) {
      return reply.code(400).header('cache-control', 'no-store')
        .send({ error: 'invalid_request', error_description: (error as FastifyError).validation ? `Invalid parameters: ${error.message}` : 'The request body is malformed' })
    }
    throw error
  })

  fastify.post('/token', {
    config: { rateLimit: { max: fastify.config.RATE_LIMIT_AUTH_MAX, timeWindow: AUTH_RATE_LIMIT_WINDOW } },
    schema: {
      tags: ['auth'],
      summary: 'OAuth 2.0 client credentials grant (service clients)',
      description: 'application/x-www-form-urlencoded or JSON. Client authentication by HTTP Basic or client_id/client_secret in the body.',
      querystring: NoQuery,
      body: TokenRequestSchema,
      response: { 200: TokenResponseSchema, 400: OAuthErrorSchema, 401: OAuthErrorSchema, 413: ErrorRef, 415: ErrorRef, 429: ErrorRef, 503: ErrorRef }
    }
  }, async function issueToken (request, reply) {
    // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    const body = Object.fromEntries(Object.entries(request.body ?? {}).filter(([, v]) => v !== '')) as typeof request.body
    if (body.grant_type === undefined) throw invalidRequest('grant_type is required')
    if (body.grant_type !== 'client_credentials') {
      throw new OAuthFailure({ error: 'unsupported_grant_type', error_description: 'Only client_credentials is supported' }, 400)
    }

    let credentials: ClientCredentials
    try {
      credentials = credentialsOf(request, body)
    } catch (err) {
      if (err instanceof OAuthFailure && err.body.error === 'invalid_client') {
        securityEvent(request, 'client.auth.failed', { reason: err.statusCode === 401 && err.headers['www-authenticate'] !== undefined ? 'malformed_basic' : 'no_credentials' })
      }
      throw err
    }
    const invalidClient = new OAuthFailure({ error: 'invalid_client', error_description: 'Client authentication failed' }, 401,
      credentials.basic ? { 'www-authenticate': 'Basic realm="api", charset="UTF-8"' } : {})
    const client = isUuid(credentials.clientId) ? await fastify.repos.clients.find(credentials.clientId.toLowerCase()) : undefined
    // Unknown, disabled and wrong-secret clients cost the same argon2 verification.
    const ok = client && client.disabled_at === null
      ? await verifyPassword(client.secret_hash, credentials.clientSecret)
      : await verifyDummy(credentials.clientSecret)
    if (!client || !ok) {
      // The detail is for the log only; the client learns nothing of which check failed.
      const reason = !client ? 'unknown_client' : client.disabled_at !== null ? 'client_disabled' : 'wrong_secret'
      securityEvent(request, 'client.auth.failed', { clientId: client?.id, method: credentials.basic ? 'client_secret_basic' : 'client_secret_post', reason })
      throw invalidClient
    }

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
    securityEvent(request, 'client.token.issued', { clientId: client.id, scope: scopes.join(' ') })
    return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send({
      access_token: issued.accessToken,
      token_type: 'Bearer' as const,
      expires_in: issued.expiresIn,
      scope: scopes.join(' ')
    })
  })
}

export default token
