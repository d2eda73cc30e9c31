import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import pLimit from 'p-limit'
import { hash, verify } from '@node-rs/argon2'

// @node-rs/argon2: prebuilt for every platform as an optional package, so it needs
// no compiler and loads on Node.js 20 as on 22/24 (the `argon2` package's prebuilt
// binary needs Node-API 10 and crashed Node.js 20 when not compiled locally).
// Hashing runs on libuv's thread pool, never on the event loop.
//
// OWASP ASVS 5.0 §11.4.2 / Appendix C: argon2id with t=2, m=19 MiB, p=1, stated
// here rather than left to a library default; more memory or lanes would let a
// handful of concurrent logins take most of the memory and both cores of a replica.
export const ARGON2_OPTIONS = {
  // Algorithm.Argon2id (a const enum, which isolatedModules cannot read).
  algorithm: 2,
  timeCost: 2,
  memoryCost: 19_456,
  parallelism: 1
} as const

// Each hash holds 19 MiB while it runs. More hashes at once than cores would only
// queue for CPU while holding memory (four at once pushed a replica past 200 MB), so
// extra logins wait here instead: same throughput, bounded memory.
const hashing = pLimit(Math.max(1, Math.min(4, availableParallelism())))

export function hashPassword (password: string): Promise<string> {
  return hashing(() => hash(password, ARGON2_OPTIONS))
}

/** False for a wrong password and for a hash that cannot be read: never throws on input. */
export async function verifyPassword (stored: string, password: string): Promise<boolean> {
  try {
    return await hashing(() => verify(stored, password))
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
