import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { isIssuerUrl } from '../../config/rules.js'
import { NoQuery } from '../../schemas/common.js'
import { SCOPES } from '../../schemas/auth.js'
import { AuthorizationServerMetadataSchema, JwksSchema } from '../../schemas/well-known.js'
import { ASSERTION_ALGORITHMS } from '../../lib/client-keys.js'

/** The folder is routes/well-known; the URL prefix is RFC 8615's. */
export const autoPrefix = '/.well-known'

const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt']

/**
 * Public documents for other services (docs/auth.md, "Verifying our tokens"): our
 * public keys (asymmetric mode only: HMAC has nothing to publish) and the RFC 8414
 * metadata (with JWT_ISSUER only: without it there is no identifier to discover by).
 * No authentication, no rate limit: they hold nothing secret and are read by machines.
 */
const wellKnown: FastifyPluginAsyncTypebox = async function wellKnown (fastify) {
  const config = fastify.config
  const keys = fastify.signingKeys
  const issuer = config.JWT_ISSUER !== undefined && isIssuerUrl(config.JWT_ISSUER) ? config.JWT_ISSUER : undefined

  if (keys !== null) {
    fastify.get('/jwks.json', {
      config: { rateLimit: false },
      schema: { tags: ['well-known'], summary: 'The public keys that verify our tokens (RFC 7517)', querystring: NoQuery, response: { 200: JwksSchema } }
    }, async function jwks (_request, reply) {
      // The one cacheable response (every other one is no-store): keys change only by rotation, which overlaps.
      reply.header('cache-control', 'public, max-age=300')
      return keys.jwks
    })
  }

  if (issuer !== undefined) {
    const base = issuer.replace(/\/$/, '')
    const metadata = {
      issuer,
      token_endpoint: `${base}/auth/token`,
      ...(keys !== null ? { jwks_uri: `${base}/.well-known/jwks.json` } : {}),
      introspection_endpoint: `${base}/auth/introspect`,
      revocation_endpoint: `${base}/auth/revoke`,
      grant_types_supported: ['client_credentials'],
      // Required by RFC 8414 §2; there is no authorization endpoint, so no response type.
      response_types_supported: [],
      scopes_supported: Object.keys(SCOPES),
      token_endpoint_auth_methods_supported: AUTH_METHODS,
      token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
      introspection_endpoint_auth_methods_supported: AUTH_METHODS,
      introspection_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
      revocation_endpoint_auth_methods_supported: AUTH_METHODS,
      revocation_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS
    }
    fastify.get('/oauth-authorization-server', {
      config: { rateLimit: false },
      schema: { tags: ['well-known'], summary: 'Authorization server metadata (RFC 8414)', querystring: NoQuery, response: { 200: AuthorizationServerMetadataSchema } }
    }, async function authorizationServerMetadata () {
      return metadata
    })
  }
}

export default wellKnown
