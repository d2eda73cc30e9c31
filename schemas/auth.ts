import { Type, type Static } from 'typebox'
import { UuidSchema } from './common.js'

// Surrounding whitespace is allowed (emails are trimmed and lower-cased); inside,
// one @ and no whitespace. The pattern has no overlapping repetitions (no ReDoS).
export const EmailSchema = Type.String({
  minLength: 3,
  maxLength: 320,
  pattern: '^\\s*[^\\s@]+@[^\\s@.][^\\s@]*\\s*$',
  description: 'Trimmed and lower-cased before use'
})

// Unicode code points (ajv counts them so), never truncated: ASVS 6.2.1, 6.2.8, 6.2.9.
export const PasswordSchema = Type.String({ minLength: 12, maxLength: 128, description: '12 to 128 characters' })

export const CredentialsSchema = Type.Object({
  email: EmailSchema,
  password: PasswordSchema
}, { additionalProperties: false })
export type Credentials = Static<typeof CredentialsSchema>

export const RegisteredSchema = Type.Object({
  id: UuidSchema,
  email: Type.String(),
  created_at: Type.String({ format: 'date-time' })
}, { description: 'The new account' })

/**
 * Login and refresh. The tokens are absent when cookies are the only token location:
 * the browser then holds them in HttpOnly cookies, out of reach of scripts.
 */
export const TokenPairSchema = Type.Object({
  access_token: Type.Optional(Type.String()),
  refresh_token: Type.Optional(Type.String()),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds the access token is valid for' })
}, { description: 'A new access token and refresh token (in the body, in cookies, or both, per JWT_TOKEN_LOCATION)' })
export type TokenPair = Static<typeof TokenPairSchema>

export const UserMeSchema = Type.Object({
  id: UuidSchema,
  email: Type.String(),
  scopes: Type.Array(Type.String()),
  created_at: Type.String({ format: 'date-time' })
}, { additionalProperties: false })

export const ClientMeSchema = Type.Object({
  client_id: UuidSchema,
  name: Type.String(),
  scopes: Type.Array(Type.String())
}, { additionalProperties: false })

export const MeSchema = Type.Union([UserMeSchema, ClientMeSchema], { description: 'The account, or the service client, the access token belongs to' })

/** RFC 6749 §4.4.2 access token request (form-encoded or JSON); validated by hand to answer §5.2 errors. */
const ClientAuthFields = {
  client_id: Type.Optional(Type.String({ maxLength: 200 })),
  client_secret: Type.Optional(Type.String({ maxLength: 200 })),
  // RFC 7521 §4.2: a JWT client assertion (private_key_jwt, or a workload identity token).
  client_assertion_type: Type.Optional(Type.String({ maxLength: 200 })),
  client_assertion: Type.Optional(Type.String({ maxLength: 16384 }))
}

export const TokenRequestSchema = Type.Object({
  grant_type: Type.Optional(Type.String({ maxLength: 100 })),
  scope: Type.Optional(Type.String({ maxLength: 2000 })),
  ...ClientAuthFields
}, { additionalProperties: false })
export type TokenRequest = Static<typeof TokenRequestSchema>

/** RFC 7662 §2.1 and RFC 7009 §2.1 requests, authenticated like a token request. */
export const TokenInspectionRequestSchema = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 16384 })),
  token_type_hint: Type.Optional(Type.String({ maxLength: 100 })),
  ...ClientAuthFields
}, { additionalProperties: false })

/** RFC 7662 §2.2: an active token's facts, or `{"active": false}` and nothing more. */
export const IntrospectionSchema = Type.Object({
  active: Type.Boolean(),
  scope: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  sub: Type.Optional(Type.String()),
  exp: Type.Optional(Type.Number()),
  iat: Type.Optional(Type.Number()),
  iss: Type.Optional(Type.String()),
  token_type: Type.Optional(Type.Union([Type.Literal('access_token'), Type.Literal('refresh_token')]))
}, { additionalProperties: false, description: 'The token\'s state and facts (RFC 7662 §2.2)' })

export const TokenResponseSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  scope: Type.String()
}, { description: 'A service token (RFC 6749 §5.1)' })

export const OAuthErrorSchema = Type.Object({
  error: Type.Union([
    Type.Literal('invalid_request'),
    Type.Literal('invalid_client'),
    Type.Literal('invalid_grant'),
    Type.Literal('unauthorized_client'),
    Type.Literal('unsupported_grant_type'),
    Type.Literal('invalid_scope')
  ]),
  error_description: Type.Optional(Type.String())
}, { description: 'RFC 6749 §5.2 error response' })
export type OAuthError = Static<typeof OAuthErrorSchema>

/** The window of RATE_LIMIT_AUTH_MAX on /auth/login, /auth/register and /auth/token. */
export const AUTH_RATE_LIMIT_WINDOW = 60_000

/** Who may hold which scope, and what each means (the OpenAPI document shows these). */
export const SCOPES: Readonly<Record<string, string>> = {
  'notes:read': 'Read notes',
  'notes:write': 'Create, change and delete notes'
}
/** The scopes every user's tokens carry. */
export const USER_SCOPES: readonly string[] = ['notes:read', 'notes:write']

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/
export const CLIENT_NAME = /^[\p{L}\p{N}][\p{L}\p{N} ._:-]{0,99}$/u
