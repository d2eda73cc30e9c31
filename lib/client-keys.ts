import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { calculateJwkThumbprint, type JWK } from 'jose'

// The public keys a private_key_jwt client registers (`npm run clients -- create
// --jwks-file`, docs/auth.md "Service clients"), checked before anything is stored.

/** Never none and never an HMAC: a registered public key must not double as a shared secret. */
export const ASSERTION_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519']
const ALGORITHMS_OF: Record<string, string[]> = { RSA: ['RS256', 'PS256'], EC: ['ES256'], OKP: ['EdDSA', 'Ed25519'] }
const PUBLIC_MEMBERS: Record<string, string[]> = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'], OKP: ['crv', 'x'] }
// RFC 7517 §9.3 and RFC 7518 §6: members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
const MAX_KEYS = 20

export type StoredJwk = Record<string, unknown> & { kid: string }

export class InvalidJwks extends Error {}

function checkKey (jwk: Record<string, unknown>, index: number): void {
  const where = `key ${index + 1}`
  const member = PRIVATE_MEMBERS.find((m) => Object.hasOwn(jwk, m))
  if (member !== undefined) throw new InvalidJwks(`${where} holds the private member "${member}": register public keys only, and keep the private key with the client`)
  const kty = jwk.kty
  if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') throw new InvalidJwks(`${where}: kty must be RSA, EC or OKP`)
  if (kty === 'EC' && jwk.crv !== 'P-256') throw new InvalidJwks(`${where}: an EC key must be on P-256`)
  if (kty === 'OKP' && jwk.crv !== 'Ed25519') throw new InvalidJwks(`${where}: an OKP key must be Ed25519`)
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new InvalidJwks(`${where}: use must be "sig"`)
  if (jwk.alg !== undefined && !(ALGORITHMS_OF[kty] ?? []).includes(jwk.alg as string)) {
    throw new InvalidJwks(`${where}: alg must be one of ${(ALGORITHMS_OF[kty] ?? []).join(', ')} for a ${kty} key`)
  }
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length === 0 || jwk.kid.length > 200)) {
    throw new InvalidJwks(`${where}: kid must be a string of 1 to 200 characters`)
  }
  let details
  try {
    details = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).asymmetricKeyDetails
  } catch {
    throw new InvalidJwks(`${where} is not a valid ${kty} public key`)
  }
  if (kty === 'RSA' && (details?.modulusLength ?? 0) < 2048) throw new InvalidJwks(`${where}: an RSA key must have at least 2048 bits`)
}

/**
 * The keys of a JWK set file, reduced to their public members, each with a `kid`
 * (its own, or its RFC 7638 thumbprint). Throws InvalidJwks saying what is wrong.
 */
export async function parseClientJwks (text: string): Promise<StoredJwk[]> {
  let set: unknown
  try {
    set = JSON.parse(text)
  } catch {
    throw new InvalidJwks('the file is not JSON')
  }
  const keys = (set as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS) throw new InvalidJwks(`the file must be a JWK set: {"keys": [1 to ${MAX_KEYS} public keys]}`)
  const stored: StoredJwk[] = []
  for (const [index, key] of keys.entries()) {
    if (typeof key !== 'object' || key === null || Array.isArray(key)) throw new InvalidJwks(`key ${index + 1} is not a JSON object`)
    const jwk = key as Record<string, unknown>
    checkKey(jwk, index)
    const members = Object.fromEntries((PUBLIC_MEMBERS[jwk.kty as string] ?? []).map((m) => [m, jwk[m]]))
    const publicJwk = { kty: jwk.kty, ...members } as JWK
    const kid = typeof jwk.kid === 'string' ? jwk.kid : await calculateJwkThumbprint(publicJwk, 'sha256')
    if (stored.some((k) => k.kid === kid)) throw new InvalidJwks(`key ${index + 1}: kid "${kid}" is used twice`)
    stored.push({ ...publicJwk, kid, ...(jwk.alg !== undefined ? { alg: jwk.alg } : {}), use: 'sig' })
  }
  return stored
}
