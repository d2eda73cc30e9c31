import { Type, type Static } from 'typebox'

/** The one error shape of SPEC §2. */
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

export const UuidSchema = Type.String({ format: 'uuid' })

/** For routes that take no query parameters: an unknown one is a 400, never ignored (SPEC §2). */
export const NoQuery = Type.Object({}, { additionalProperties: false })
