import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { calculateJwkThumbprint } from 'jose'
import { algorithmOfKey, parsePrivateKey, type AsymmetricAlgorithm } from '../config/signing-keys.js'

// Asymmetric signing keys (docs/auth.md, "Signing keys"): what the tokens plugin signs
// and verifies with, and what GET /.well-known/jwks.json publishes.

/** A public JWK as published: public members only, by construction. */
export interface PublicJwk {
  kty: 'EC' | 'OKP'
  crv: string
  x: string
  y?: string
  kid: string
  alg: AsymmetricAlgorithm
  use: 'sig'
}

export interface SigningKey {
  alg: AsymmetricAlgorithm
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key. */
  kid: string
  privatePem: string
  publicPem: string
  jwk: PublicJwk
}

/** The signing key of a PEM private key (already checked by config/rules.ts). */
export async function signingKey (pem: string): Promise<SigningKey> {
  const key = parsePrivateKey(pem)
  const alg = key !== undefined ? algorithmOfKey(key) : undefined
  if (key === undefined || alg === undefined) throw new Error('not a P-256 or Ed25519 private key')
  return fromKeyObject(key, alg)
}

async function fromKeyObject (key: KeyObject, alg: AsymmetricAlgorithm): Promise<SigningKey> {
  const publicKey = createPublicKey(key)
  // Only the public members are copied: a private `d` can never be published by mistake.
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' })
  if ((kty !== 'EC' && kty !== 'OKP') || typeof crv !== 'string' || typeof x !== 'string') throw new Error('unexpected public key')
  const members = { kty: kty as PublicJwk['kty'], crv, x, ...(typeof y === 'string' ? { y } : {}) }
  const kid = await calculateJwkThumbprint(members, 'sha256')
  return {
    alg,
    kid,
    privatePem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    jwk: { ...members, kid, alg, use: 'sig' }
  }
}

function generatePem (alg: AsymmetricAlgorithm): string {
  const { privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
}

/** A key that exists only in this process (tests): never written anywhere. */
export function ephemeralKey (alg: AsymmetricAlgorithm): Promise<SigningKey> {
  return signingKey(generatePem(alg))
}

/**
 * The development key kept in `file`, generated on first use (mode 0600), so that
 * tokens survive a restart of `npm run dev`. `created` says whether it was made now.
 */
export async function developmentKey (alg: AsymmetricAlgorithm, file: string): Promise<{ key: SigningKey, created: boolean }> {
  let pem: string
  let created = false
  try {
    pem = readFileSync(file, 'utf8')
  } catch {
    mkdirSync(dirname(file), { recursive: true })
    try {
      // 'wx': two processes starting at once keep one key, the first one written.
      writeFileSync(file, generatePem(alg), { flag: 'wx', mode: 0o600 })
      created = true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    chmodSync(file, 0o600)
    pem = readFileSync(file, 'utf8')
  }
  return { key: await signingKey(pem), created }
}
