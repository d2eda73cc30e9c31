import { createPrivateKey, type KeyObject } from 'node:crypto'

// Which algorithm a PEM private key can sign with (docs/contract.md, "Signing keys"):
// P-256 for ES256, Ed25519 for EdDSA, nothing else. The configuration rules use it to
// refuse a key that does not match JWT_ALGORITHM; the tokens plugin to load the key.

export const ASYMMETRIC_ALGORITHMS = ['ES256', 'EdDSA'] as const
export type AsymmetricAlgorithm = typeof ASYMMETRIC_ALGORITHMS[number]

export function isAsymmetric (algorithm: string | undefined): algorithm is AsymmetricAlgorithm {
  return (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(algorithm ?? '')
}

/**
 * The private key of a PEM text, or undefined when it is not an unencrypted private
 * key. Platforms that flatten a multi-line value into `\n` escapes are forgiven.
 */
export function parsePrivateKey (pem: string): KeyObject | undefined {
  const text = pem.includes('\n') ? pem : pem.replace(/\\n/g, '\n')
  try {
    const key = createPrivateKey({ key: text, format: 'pem' })
    return key.type === 'private' ? key : undefined
  } catch {
    return undefined
  }
}

/** The algorithm `key` signs with here, or undefined for any other kind of key (RSA, P-384, …). */
export function algorithmOfKey (key: KeyObject): AsymmetricAlgorithm | undefined {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  return undefined
}

/** What is wrong with `pem` as a signing key for `algorithm`, or undefined when nothing is. */
export function signingKeyProblem (name: string, pem: string, algorithm: AsymmetricAlgorithm): string | undefined {
  const key = parsePrivateKey(pem)
  if (key === undefined) return `${name} must be an unencrypted PKCS#8 PEM private key`
  if (algorithmOfKey(key) !== algorithm) {
    return `${name} does not match JWT_ALGORITHM=${algorithm} (${algorithm === 'ES256' ? 'a P-256 EC key' : 'an Ed25519 key'} is needed)`
  }
  return undefined
}
