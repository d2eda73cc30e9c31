import { STATUS_CODES } from 'node:http'

/** The stable, machine-readable codes (docs/contract.md, "Errors"). */
export const ERROR_CODES = {
  VALIDATION_ERROR: 400,
  BAD_REQUEST: 400,
  AUTH_MISSING_TOKEN: 401,
  AUTH_INVALID_TOKEN: 401,
  AUTH_TOKEN_EXPIRED: 401,
  AUTH_TOKEN_REVOKED: 401,
  AUTH_CSRF_FAILED: 401,
  AUTH_INVALID_CREDENTIALS: 401,
  AUTH_INSUFFICIENT_SCOPE: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503
} as const

export type ErrorCode = keyof typeof ERROR_CODES

/** An error whose status, code and message are safe to show to the client as they are. */
export class ApiError extends Error {
  readonly statusCode: number
  readonly code: ErrorCode
  readonly headers: Record<string, string>
  constructor (code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.statusCode = ERROR_CODES[code]
    this.headers = headers
  }
}

export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}

/** The one error body (schemas/common.ts ErrorSchema). */
export function errorBody (statusCode: number, code: ErrorCode, message: string, requestId: string) {
  return { statusCode, error: reasonPhrase(statusCode), code, message, requestId }
}

export function reasonPhrase (statusCode: number): string {
  return STATUS_CODES[statusCode] ?? 'Error'
}

/** The code a status maps to when an error (from a library, say) brings only a status. */
export function codeForStatus (statusCode: number): ErrorCode {
  switch (statusCode) {
    case 401: return 'AUTH_INVALID_TOKEN'
    case 403: return 'AUTH_INSUFFICIENT_SCOPE'
    case 404: case 405: return 'NOT_FOUND'
    case 409: return 'CONFLICT'
    case 412: return 'PRECONDITION_FAILED'
    case 413: return 'PAYLOAD_TOO_LARGE'
    case 415: return 'UNSUPPORTED_MEDIA_TYPE'
    case 429: return 'RATE_LIMITED'
    case 503: return 'SERVICE_UNAVAILABLE'
    default: return statusCode >= 400 && statusCode < 500 ? 'BAD_REQUEST' : 'INTERNAL_ERROR'
  }
}

// RFC 6750 §3: the challenge names the problem once a token was presented.
const BEARER_CHALLENGE = 'Bearer realm="api"'
const INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'

/** A 401 for a token problem; `presented` says whether the request carried a token. */
export function tokenError (code: ErrorCode, message: string, presented: boolean): ApiError {
  return new ApiError(code, message, { 'www-authenticate': presented ? INVALID_TOKEN_CHALLENGE : BEARER_CHALLENGE })
}

export function invalidToken (message: string): ApiError {
  return tokenError('AUTH_INVALID_TOKEN', message, true)
}

/** A 403 for a principal that may not do this. */
export function insufficientScope (message: string): ApiError {
  return new ApiError('AUTH_INSUFFICIENT_SCOPE', message, { 'www-authenticate': 'Bearer realm="api", error="insufficient_scope"' })
}
