import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { ErrorSchema } from '../schemas/common.js'
import { ApiError, codeForStatus, errorBody, isErrorCode, type ErrorCode } from '../lib/errors.js'
import { isDatabaseUnavailable } from '../lib/db-errors.js'

// Fastify's own errors whose message is safe to show, and the code each maps to.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_TYPE: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_VALIDATION: 'VALIDATION_ERROR',
  FST_ERR_NOT_FOUND: 'NOT_FOUND'
}

interface Mapped { statusCode: number, code: ErrorCode, message: string, headers: Record<string, string> }

/**
 * @fastify/jwt and fast-jwt errors, should any reach us (plugins/app/auth/tokens.ts
 * maps its own): left alone, a forged token gives a 400 or a 500 with fast-jwt's
 * message. Every one of them is a 401 with a code of ours.
 */
function mapJwtError (errorCode: string | undefined): Mapped | undefined {
  if (errorCode === undefined || !/^(FAST|FST)_JWT_/.test(errorCode)) return undefined
  if (errorCode === 'FST_JWT_NO_AUTHORIZATION_IN_HEADER' || errorCode === 'FST_JWT_NO_AUTHORIZATION_IN_COOKIE') {
    return { statusCode: 401, code: 'AUTH_MISSING_TOKEN', message: 'Missing token', headers: { 'www-authenticate': 'Bearer realm="api"' } }
  }
  const expired = errorCode === 'FAST_JWT_EXPIRED' || errorCode === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED'
  return {
    statusCode: 401,
    code: expired ? 'AUTH_TOKEN_EXPIRED' : 'AUTH_INVALID_TOKEN',
    message: expired ? 'The token has expired' : 'The token is invalid',
    headers: { 'www-authenticate': 'Bearer realm="api", error="invalid_token"' }
  }
}

function mapError (error: FastifyError, development: boolean): Mapped {
  if (error instanceof ApiError) {
    return { statusCode: error.statusCode, code: error.code, message: error.message, headers: error.headers }
  }
  if (error.validation) {
    return { statusCode: 400, code: 'VALIDATION_ERROR', message: error.message, headers: {} }
  }
  if (isDatabaseUnavailable(error)) {
    return { statusCode: 503, code: 'SERVICE_UNAVAILABLE', message: 'The database is unavailable; retry later', headers: { 'retry-after': '1' } }
  }
  const jwt = mapJwtError(error.code)
  if (jwt) return jwt
  const known = error.code !== undefined ? FASTIFY_CODES[error.code] : undefined
  const status = error.statusCode ?? 500
  if (known) return { statusCode: status, code: known, message: error.message, headers: {} }
  if (status >= 400 && status < 500) {
    // Library errors with a 4xx (body parser, plugins): the status is right, the code is ours.
    const code = isErrorCode(error.code) ? error.code : codeForStatus(status)
    return { statusCode: status, code, message: error.message, headers: {} }
  }
  if (status === 503) return { statusCode: 503, code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable; retry later', headers: {} }
  // Anything else is our fault: its message may hold internals (SQL, hosts, secrets).
  return { statusCode: 500, code: 'INTERNAL_ERROR', message: development ? error.message : 'An internal error occurred', headers: {} }
}

/**
 * A request its client stopped sending before the end (it hung up mid-body, or was
 * cut off for being too slow, server-options/index.ts): nothing can be answered, and
 * nothing on our side failed (docs/edge.md, "Clients that hang up").
 */
function abortedByClient (request: FastifyRequest): boolean {
  return request.raw.complete === false && (request.raw.destroyed || request.raw.socket?.destroyed === true)
}

/**
 * The one error shape (docs/contract.md, "Errors") for everything that goes wrong:
 * validation, body parsing, authentication, database outages, bugs. Registered
 * before any other plugin, because a route keeps the error handler of the moment
 * it is added (@fastify/cors adds one for every preflight).
 */
export default fp(async function errorsPlugin (fastify) {
  const development = fastify.config.ENVIRONMENT === 'development'
  fastify.addSchema(ErrorSchema)

  fastify.setErrorHandler(function handleError (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    if (abortedByClient(request)) {
      request.log.info({ method: request.method, url: request.url.split('?')[0], reason: error.message }, 'request aborted by the client')
      // Hijacked: the socket is gone, there is no response to write or to log.
      reply.hijack()
      return
    }
    const mapped = mapError(error, development)
    if (mapped.statusCode >= 500) {
      request.log.error({ err: error }, 'request failed')
    } else {
      request.log.info({ code: mapped.code, statusCode: mapped.statusCode, reason: error.message }, 'request refused')
    }
    if (mapped.statusCode === 401 && mapped.headers['www-authenticate'] === undefined) {
      mapped.headers['www-authenticate'] = 'Bearer realm="api"'
    }
    reply.code(mapped.statusCode).headers(mapped.headers)
      .type('application/json; charset=utf-8')
      .send(errorBody(mapped.statusCode, mapped.code, mapped.message, request.id))
  })
}, { name: 'errors', dependencies: ['config'] })
