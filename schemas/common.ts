import { Type, type Static } from 'typebox'

/** The one error shape (docs/contract.md, "Errors"). */
export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.String(),
  message: Type.String(),
  requestId: Type.String()
}, { $id: 'Error', description: 'Every error response' })
export type ErrorBody = Static<typeof ErrorSchema>

/** A reference to the shared error schema, for route `response` maps. */
export const ErrorRef = Type.Unsafe<ErrorBody>({ $ref: 'Error#' })

/** The shared Error schema for each listed status, plus the 500 and 503 any route can give. */
export function errors (...statuses: number[]): Record<number, typeof ErrorRef> {
  const out: Record<number, typeof ErrorRef> = {}
  for (const status of [...statuses, 500, 503]) out[status] = ErrorRef
  return out
}

// The canonical 8-4-4-4-12 hexadecimal spelling only: what PostgreSQL's uuid type reads back.
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
const UUID = new RegExp(UUID_PATTERN)

/** An id, in every schema that takes or gives one. */
export const UuidSchema = Type.String({ format: 'uuid', pattern: UUID_PATTERN })

export function isUuid (value: string): boolean {
  return UUID.test(value)
}

/**
 * For POST routes that take no body: none, or an empty JSON object (what some
 * clients send anyway). The document declares no request body for them
 * (plugins/external/swagger.ts).
 */
export const NoBody = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })])

/** For routes that take no query parameters: an unknown one is a 400, never ignored. */
export const NoQuery = Type.Object({}, { additionalProperties: false })

/** A response without a body (204, 304), for route `response` maps. */
export const NoContent = (description: string) => Type.Unsafe<undefined>({ type: 'null', description })
