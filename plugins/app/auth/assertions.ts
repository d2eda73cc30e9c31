import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose'
import type { Config } from '../../../config/schema.js'
import { ASSERTION_ALGORITHMS } from '../../../lib/client-keys.js'
import type { Client, ClientWithKeys } from '../../../db/clients.js'
import type { Repositories } from '../../../db/index.js'
import { isUuid } from '../../../schemas/common.js'
import type { FederatedKeys } from './federation.js'

// Client assertions (RFC 7523 §2.2, docs/contract.md "Client assertions and workload
// identity"), verified with jose: private_key_jwt against the client's registered
// keys, federated against its issuer's published keys. Which check failed is told
// to the log only: the client hears invalid_client.

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const LEEWAY_S = 5
// RFC 7523 §3 leaves the lifetime to us: short, so that the replay table stays small.
const MAX_LIFETIME_S = 300
const MAX_JTI_LENGTH = 200
const MAX_CACHED_KEY_SETS = 1000
const MAX_IDENTITY_LENGTH = 2000

/** Why an assertion was refused, for the log; `clientId` when the assertion named a known client. */
export class AssertionRefused extends Error {
  constructor (reason: string, readonly clientId?: string) {
    super(reason)
  }
}

export type AssertionMethod = 'private_key_jwt' | 'federated'

/** A claim the database can hold (text never contains U+0000) within the table's bounds. */
function storable (value: string): boolean {
  return value.length > 0 && value.length <= MAX_IDENTITY_LENGTH && !value.includes('\u0000')
}

/** jose's errors say which check failed (a code, the claim), never a key or a secret. */
function reasonOf (err: unknown): string {
  if (err instanceof errors.JWTClaimValidationFailed) return `${err.code}: ${err.claim} ${err.reason}`
  if (err instanceof errors.JOSEError) return `${err.code}: ${err.message}`
  return (err as Error).message
}

/** jwtVerify, trying each candidate key when several match a token without a kid (as jose documents). */
async function verifyWith (assertion: string, keys: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(assertion, keys, options)).payload
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err
    for await (const key of err) {
      try {
        return (await jwtVerify(assertion, key, options)).payload
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner
      }
    }
    throw new errors.JWSSignatureVerificationFailed()
  }
}

export function assertionVerifier (config: Config, repos: Repositories, federation: FederatedKeys) {
  const issuer = config.JWT_ISSUER
  const tokenEndpoint = issuer !== undefined ? `${issuer.replace(/\/$/, '')}/auth/token` : undefined
  const localSets = new Map<string, { fingerprint: string, keys: JWTVerifyGetKey }>()

  /** The client's registered keys as a jose key set; keys never change, so each client's is built once. */
  function keysOf (client: ClientWithKeys): JWTVerifyGetKey {
    const fingerprint = client.keys.map((k) => k.kid).join(' ')
    const cached = localSets.get(client.id)
    if (cached?.fingerprint === fingerprint) return cached.keys
    const keys = createLocalJWKSet({ keys: client.keys })
    if (localSets.size >= MAX_CACHED_KEY_SETS) localSets.delete(localSets.keys().next().value as string)
    localSets.set(client.id, { fingerprint, keys })
    return keys
  }

  async function privateKeyJwt (assertion: string, id: string): Promise<Client> {
    const client = await repos.clients.findWithKeys(id)
    if (!client || client.auth_method !== 'private_key_jwt') throw new AssertionRefused('no private_key_jwt client has this id')
    if (client.disabled_at !== null) throw new AssertionRefused('the client is disabled', client.id)
    if (issuer === undefined || tokenEndpoint === undefined) throw new AssertionRefused('JWT_ISSUER is not set: there is no audience to check', client.id)
    let payload: JWTPayload
    try {
      payload = await verifyWith(assertion, keysOf(client), {
        algorithms: ASSERTION_ALGORITHMS, issuer: client.id, subject: client.id, audience: [issuer, tokenEndpoint], clockTolerance: LEEWAY_S, requiredClaims: ['exp', 'jti', 'aud']
      })
    } catch (err) {
      throw new AssertionRefused(reasonOf(err), client.id)
    }
    const now = Math.floor(Date.now() / 1000)
    const { aud, exp, iat, jti } = payload as { aud: string | string[], exp: number, iat?: number, jti: unknown }
    // "Equal to", not "containing": one assertion, one audience.
    if (Array.isArray(aud) && aud.length !== 1) throw new AssertionRefused('aud names more than one audience', client.id)
    if (exp > now + MAX_LIFETIME_S + LEEWAY_S) throw new AssertionRefused('exp is more than 5 minutes ahead', client.id)
    if (iat !== undefined && iat > now + LEEWAY_S) throw new AssertionRefused('iat is in the future', client.id)
    if (typeof jti !== 'string' || jti.length > MAX_JTI_LENGTH || !storable(jti)) throw new AssertionRefused('jti must be a string of 1 to 200 characters, without U+0000', client.id)
    // Kept for as long as the assertion could verify (exp plus the leeway), on every replica.
    if (!await repos.clientAssertions.use(client.id, jti, new Date((exp + LEEWAY_S) * 1000))) {
      throw new AssertionRefused('the assertion was already used (jti replayed)', client.id)
    }
    return client
  }

  async function federated (assertion: string, iss: string, sub: string, claimedId: string | undefined): Promise<Client> {
    // No registration, no fetch: an unknown issuer is never contacted.
    const client = await repos.clients.findFederated(iss, sub)
    if (!client) throw new AssertionRefused('no federated client is registered for this issuer and subject')
    if (claimedId !== undefined && claimedId !== client.id) throw new AssertionRefused('client_id differs from the client of the assertion', client.id)
    if (!federation.allowed(iss)) throw new AssertionRefused('the issuer is not in FEDERATION_ALLOWED_ISSUERS', client.id)
    const audience = config.JWT_AUDIENCE ?? issuer
    if (audience === undefined) throw new AssertionRefused('neither JWT_AUDIENCE nor JWT_ISSUER is set: there is no audience to check', client.id)
    try {
      // These tokens are reused until their holder rotates them: no jti check (docs/auth.md).
      await verifyWith(assertion, federation.keySet(iss, client.jwks_uri), {
        algorithms: ASSERTION_ALGORITHMS, issuer: iss, subject: sub, audience, clockTolerance: LEEWAY_S, requiredClaims: ['exp']
      })
    } catch (err) {
      throw new AssertionRefused(reasonOf(err), client.id)
    }
    return client
  }

  /** The client the assertion authenticates; `claimedId` is the body's client_id, if sent. */
  async function verify (assertion: string, claimedId: string | undefined): Promise<{ client: Client, method: AssertionMethod }> {
    let claims: JWTPayload
    try {
      claims = decodeJwt(assertion)
    } catch (err) {
      throw new AssertionRefused(`the assertion is not a JWT (${reasonOf(err)})`)
    }
    const { iss, sub } = claims
    if (typeof iss !== 'string' || typeof sub !== 'string') throw new AssertionRefused('the assertion has no iss or sub')
    // They are looked up in the database, which refuses what it cannot store.
    if (!storable(iss) || !storable(sub)) throw new AssertionRefused('iss or sub is empty, over 2000 characters or holds U+0000')
    // RFC 7521 §4.2: a client_id sent beside the assertion names the same client.
    if (iss === sub && isUuid(iss)) {
      if (claimedId !== undefined && claimedId !== iss) throw new AssertionRefused('client_id differs from the client of the assertion')
      return { client: await privateKeyJwt(assertion, iss.toLowerCase()), method: 'private_key_jwt' }
    }
    return { client: await federated(assertion, iss, sub, claimedId), method: 'federated' }
  }

  return { verify }
}
