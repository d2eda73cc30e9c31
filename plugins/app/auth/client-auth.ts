import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { verifyDummy, verifyPassword } from '../../../lib/passwords.js'
import { securityEvent } from '../../../lib/security-events.js'
import { isUuid } from '../../../schemas/common.js'
import { AssertionRefused, CLIENT_ASSERTION_TYPE, assertionVerifier } from './assertions.js'
import { federatedKeys } from './federation.js'
import { invalidClient, invalidRequest } from './oauth-errors.js'

export type ClientAuthMethodUsed = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'federated'
export interface AuthenticatedClient { id: string, name: string, scopes: string[], method: ClientAuthMethodUsed }
/** The client authentication parameters of an OAuth request body (RFC 6749 §2.3.1, RFC 7521 §4.2). */
export interface ClientAuthParams { client_id?: string, client_secret?: string, client_assertion_type?: string, client_assertion?: string }

export interface ClientAuth {
  /** The active client that the request authenticates, or an OAuthFailure (invalid_client, invalid_request). */
  authenticate: (request: FastifyRequest, params: ClientAuthParams) => Promise<AuthenticatedClient>
}

declare module 'fastify' {
  interface FastifyInstance {
    clientAuth: ClientAuth
  }
}

const PRUNE_INTERVAL_MS = 10 * 60_000

/** RFC 6749 §2.3.1: the id and secret are form-url-encoded before Basic encoding. */
function formDecode (value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}

/** HTTP Basic credentials: undefined when no Basic header was sent, null when it is malformed. */
function basicCredentials (request: FastifyRequest): { clientId: string, clientSecret: string } | null | undefined {
  const header = request.headers.authorization?.trim()
  const match = header !== undefined ? /^basic(?:\s+(\S*))?$/i.exec(header) : null
  if (!match) return undefined
  const encoded = match[1] ?? ''
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return null
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return null
  const clientId = formDecode(decoded.slice(0, colon))
  const clientSecret = formDecode(decoded.slice(colon + 1))
  return clientId === undefined || clientSecret === undefined ? null : { clientId, clientSecret }
}

function refusalReason (client: { disabled_at: Date | null, secret_hash: string | null } | undefined): string {
  if (!client) return 'unknown_client'
  if (client.disabled_at !== null) return 'client_disabled'
  return client.secret_hash === null ? 'no_secret' : 'wrong_secret'
}

/**
 * Client authentication for /auth/token, /auth/introspect and /auth/revoke
 * (docs/auth.md, "Service clients"): a secret by HTTP Basic or in the body, or a
 * client assertion (private_key_jwt or a federated identity); exactly one of them
 * (RFC 6749 §2.3). Every failure is the same invalid_client; the log says why.
 */
export default fp(async function clientAuthPlugin (fastify) {
  const config = fastify.config
  const allowList = config.FEDERATION_ALLOWED_ISSUERS
  const federation = federatedKeys({
    // Unset, any issuer may be named outside production, and none in it.
    allowed: (issuer) => allowList !== undefined ? allowList.includes(issuer) : config.ENVIRONMENT !== 'production',
    httpsOnly: config.ENVIRONMENT === 'production'
  })
  const assertions = assertionVerifier(config, fastify.repos, federation)

  function refuse (request: FastifyRequest, method: ClientAuthMethodUsed | 'client_assertion', reason: string, clientId: string | undefined, basic: boolean): never {
    securityEvent(request, 'client.auth.failed', { method, reason, clientId: clientId !== undefined && isUuid(clientId) ? clientId.toLowerCase() : undefined })
    throw invalidClient(basic)
  }

  async function authenticate (request: FastifyRequest, params: ClientAuthParams): Promise<AuthenticatedClient> {
    const basic = basicCredentials(request)
    const assertionSent = params.client_assertion !== undefined || params.client_assertion_type !== undefined
    if ([basic !== undefined, params.client_secret !== undefined, assertionSent].filter(Boolean).length > 1) {
      throw invalidRequest('Use one client authentication method: HTTP Basic, client_secret or client_assertion')
    }

    if (assertionSent) {
      if (params.client_assertion_type !== CLIENT_ASSERTION_TYPE || params.client_assertion === undefined) {
        throw invalidRequest(`client_assertion needs client_assertion_type=${CLIENT_ASSERTION_TYPE}`)
      }
      try {
        const { client, method } = await assertions.verify(params.client_assertion, params.client_id)
        return { id: client.id, name: client.name, scopes: client.scopes, method }
      } catch (err) {
        if (err instanceof AssertionRefused) refuse(request, 'client_assertion', err.message, err.clientId ?? params.client_id, false)
        throw err
      }
    }

    if (basic === null) refuse(request, 'client_secret_basic', 'malformed_basic', undefined, true)
    if (basic !== undefined && params.client_id !== undefined && params.client_id !== basic.clientId) {
      throw invalidRequest('client_id differs from the HTTP Basic credentials')
    }
    const method = basic !== undefined ? 'client_secret_basic' : 'client_secret_post'
    const clientId = basic?.clientId ?? params.client_id
    const secret = basic?.clientSecret ?? params.client_secret
    if (clientId === undefined || secret === undefined) refuse(request, method, 'no_credentials', clientId, false)
    const client = isUuid(clientId) ? await fastify.repos.clients.find(clientId.toLowerCase()) : undefined
    // Unknown, disabled, secretless and wrong-secret clients cost the same argon2 verification.
    const ok = client && client.disabled_at === null && client.secret_hash !== null
      ? await verifyPassword(client.secret_hash, secret)
      : await verifyDummy(secret)
    // The answer is the same invalid_client for all of them; only the log tells them apart.
    if (!client || !ok) refuse(request, method, refusalReason(client), clientId, basic !== undefined)
    return { id: client.id, name: client.name, scopes: client.scopes, method }
  }

  fastify.decorate('clientAuth', { authenticate })

  // Assertion ids are kept only while their assertion could still verify.
  const prune = setInterval(() => {
    fastify.repos.clientAssertions.prune().then((deleted) => {
      if (deleted > 0) fastify.log.info({ deleted }, 'expired client assertion ids pruned')
    }, (err: Error) => fastify.log.warn({ reason: err.message }, 'pruning client assertion ids failed'))
  }, PRUNE_INTERVAL_MS)
  prune.unref()
  fastify.addHook('onClose', async () => clearInterval(prune))
}, { name: 'client-auth', dependencies: ['config', 'repositories'] })
