import { Type, type Static } from 'typebox'
import { UuidSchema } from './common.js'

// The claims of our tokens (docs/contract.md, "Tokens"), checked after the signature
// on every verification: fast-jwt checks only exp/nbf/iat, iss and aud.

const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength })

const Common = {
  sub: Text(200),
  jti: Text(200),
  iat: Type.Number(),
  nbf: Type.Optional(Type.Number()),
  exp: Type.Number(),
  scope: Type.Optional(Type.String({ maxLength: 2000 })),
  csrf: Type.Optional(Text(200)),
  // One issuer, one audience: we never issue array-valued iss or aud, so we accept none.
  iss: Type.Optional(Type.String()),
  aud: Type.Optional(Type.String())
}

/** A user's token belongs to a login session... */
export const UserClaimsSchema = Type.Object({
  ...Common,
  type: Type.Union([Type.Literal('access'), Type.Literal('refresh')]),
  sid: UuidSchema,
  client_id: Type.Optional(Type.Never())
})

/** ...a service client's to the client, and it is only ever an access token. */
export const ClientClaimsSchema = Type.Object({
  ...Common,
  type: Type.Literal('access'),
  client_id: UuidSchema,
  client_name: Type.Optional(Text(200)),
  sid: Type.Optional(Type.Never())
})

export const TokenClaimsSchema = Type.Union([UserClaimsSchema, ClientClaimsSchema])
export type TokenClaims = Static<typeof TokenClaimsSchema>
export type TokenType = TokenClaims['type']

/** Who made an authenticated request: a user (through a login session) or a service client. */
export type Principal =
  | { kind: 'user', userId: string, sessionId: string, scopes: string[] }
  | { kind: 'client', clientId: string, name: string, scopes: string[] }
