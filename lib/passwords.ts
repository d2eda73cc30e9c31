import { randomBytes } from 'node:crypto'
import argon2 from 'argon2'

// OWASP ASVS 5.0 §11.4.2 / Appendix C: argon2id with t=2, m=19 MiB, p=1. The
// package's defaults (64 MiB, p=4) would let a handful of concurrent logins take
// most of the memory and both cores of a small replica.
export const ARGON2_OPTIONS = {
  type: argon2.argon2id,
  timeCost: 2,
  memoryCost: 19_456,
  parallelism: 1
} as const

export function hashPassword (password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS)
}

/** False for a wrong password and for a hash that cannot be read: never throws on input. */
export async function verifyPassword (hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password)
  } catch {
    return false
  }
}

let dummyHash: Promise<string> | undefined

/**
 * Verifies the password against a hash nobody knows the password of, so that an
 * unknown account takes as long as a wrong password: response times do not tell
 * which emails or client ids exist (ASVS 6.3.8, no enumeration).
 */
export async function verifyDummy (password: string): Promise<false> {
  dummyHash ??= hashPassword(randomBytes(32).toString('base64url'))
  await verifyPassword(await dummyHash, password)
  return false
}

/** Computes the dummy hash ahead of the first unknown login (start-up, not request time). */
export async function warmUpDummyHash (): Promise<void> {
  dummyHash ??= hashPassword(randomBytes(32).toString('base64url'))
  await dummyHash
}
