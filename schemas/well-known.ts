import { Type } from 'typebox'

// The documents under /.well-known (docs/contract.md, "Signing keys"). The response
// schemas name every member sent: nothing else, a private key member least of all,
// can be serialised.

export const PublicJwkSchema = Type.Object({
  kty: Type.String(),
  crv: Type.String(),
  x: Type.String(),
  y: Type.Optional(Type.String()),
  kid: Type.String(),
  alg: Type.String(),
  use: Type.Literal('sig')
}, { additionalProperties: false })

export const JwksSchema = Type.Object({ keys: Type.Array(PublicJwkSchema) }, { additionalProperties: false, description: 'RFC 7517 §5 JWK set' })

const Strings = Type.Array(Type.String())

/** RFC 8414 §2 authorization server metadata. */
export const AuthorizationServerMetadataSchema = Type.Object({
  issuer: Type.String(),
  token_endpoint: Type.String(),
  jwks_uri: Type.Optional(Type.String()),
  introspection_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  grant_types_supported: Strings,
  response_types_supported: Strings,
  scopes_supported: Strings,
  token_endpoint_auth_methods_supported: Strings,
  token_endpoint_auth_signing_alg_values_supported: Strings,
  introspection_endpoint_auth_methods_supported: Strings,
  introspection_endpoint_auth_signing_alg_values_supported: Strings,
  revocation_endpoint_auth_methods_supported: Strings,
  revocation_endpoint_auth_signing_alg_values_supported: Strings
}, { additionalProperties: false })
