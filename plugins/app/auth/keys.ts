import { resolve } from 'node:path'
import fp from 'fastify-plugin'
import { isAsymmetric, type AsymmetricAlgorithm } from '../../../config/signing-keys.js'
import { developmentKey, ephemeralKey, signingKey, type PublicJwk, type SigningKey } from '../../../lib/signing-keys.js'

export interface SigningKeys {
  /** Signs every new token. */
  current: SigningKey
  /** The key being rotated out: verifies and is published, never signs. */
  previous?: SigningKey
  /** The public JWK set: GET /.well-known/jwks.json. */
  jwks: { keys: PublicJwk[] }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The asymmetric signing keys; null with an HMAC algorithm (nothing to publish). */
    signingKeys: SigningKeys | null
  }
}

/** Where `npm run dev` keeps the key it generates (one file per algorithm, beside the embedded database). */
export function developmentKeyFile (alg: AsymmetricAlgorithm): string {
  return resolve('.data', `jwt-signing-key-${alg.toLowerCase()}.pem`)
}

/**
 * The keys of JWT_ALGORITHM=ES256|EdDSA (docs/auth.md, "Signing keys"). Production
 * never gets here without JWT_PRIVATE_KEY (config/rules.ts); in development a key is
 * generated once into .data/, in tests one lives only in memory.
 */
export default fp(async function signingKeysPlugin (fastify) {
  const config = fastify.config
  const algorithm = config.JWT_ALGORITHM
  if (!isAsymmetric(algorithm)) {
    fastify.decorate('signingKeys', null)
    return
  }

  let current: SigningKey
  if (config.JWT_PRIVATE_KEY !== undefined) {
    current = await signingKey(config.JWT_PRIVATE_KEY)
  } else if (config.ENVIRONMENT === 'development') {
    const file = developmentKeyFile(algorithm)
    const { key, created } = await developmentKey(algorithm, file)
    current = key
    fastify.log.warn({ file, kid: key.kid }, `JWT_PRIVATE_KEY is not set: signing with a development key ${created ? 'generated now' : 'generated earlier'} (never use it in production)`)
  } else {
    current = await ephemeralKey(algorithm)
    fastify.log.warn({ kid: current.kid }, 'JWT_PRIVATE_KEY is not set: signing with a key that lives only in this process')
  }

  const previousKey = config.JWT_PRIVATE_KEY_PREVIOUS !== undefined ? await signingKey(config.JWT_PRIVATE_KEY_PREVIOUS) : undefined
  const previous = previousKey !== undefined && previousKey.kid !== current.kid ? previousKey : undefined
  const jwks = { keys: [current.jwk, ...(previous ? [previous.jwk] : [])] }
  fastify.decorate('signingKeys', { current, previous, jwks })
}, { name: 'signing-keys', dependencies: ['config'] })
