import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { OAuthError } from '../../../schemas/auth.js'

// The OAuth endpoints (/auth/token, /auth/introspect, /auth/revoke) answer their own
// errors with RFC 6749 §5.2 bodies, so that stock OAuth clients understand them; their
// 413, 415 and 429 keep the service's common shape (docs/contract.md, "Errors").

/** An RFC 6749 §5.2 error: sent as it is, not in the service's common error shape. */
export class OAuthFailure extends Error {
  constructor (readonly body: OAuthError, readonly statusCode: number, readonly headers: Record<string, string> = {}) {
    super(body.error_description ?? body.error)
  }
}

const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="api", charset="UTF-8"' }

export const invalidRequest = (description: string) => new OAuthFailure({ error: 'invalid_request', error_description: description }, 400)

/** RFC 6749 §5.2: only a client that tried HTTP Basic is challenged to use it. */
export function invalidClient (basic: boolean, description = 'Client authentication failed'): OAuthFailure {
  return new OAuthFailure({ error: 'invalid_client', error_description: description }, 401, basic ? BASIC_CHALLENGE : {})
}

/**
 * The error handler of an OAuth endpoint's context: its own failures as they are; a
 * body that is not a valid request (schema, JSON syntax, duplicated or unknown
 * parameters) as invalid_request; anything else to the common handler.
 */
export function oauthErrorHandler (error: FastifyError | OAuthFailure, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof OAuthFailure) {
    return reply.code(error.statusCode).headers(error.headers).header('cache-control', 'no-store').send(error.body)
  }
  if ((error as FastifyError).validation || error.statusCode === 400) {
    return reply.code(400).header('cache-control', 'no-store')
      .send({ error: 'invalid_request', error_description: (error as FastifyError).validation ? `Invalid parameters: ${error.message}` : 'The request body is malformed' })
  }
  throw error
}
