import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'

/**
 * @fastify/cookie, only when cookies are a token location: with
 * JWT_TOKEN_LOCATION=headers no cookie is ever parsed, read or set, so a stray cookie
 * can never authenticate anything. SECRET_KEY signs cookies that ask for it; the JWT
 * cookies carry their own signature, and the CSRF cookies must stay readable.
 */
export default fp(async function cookiePlugin (fastify) {
  if (!fastify.config.JWT_TOKEN_LOCATION.includes('cookies')) return
  await fastify.register(fastifyCookie, { secret: fastify.config.SECRET_KEY, hook: 'onRequest' })
}, { name: 'cookie', dependencies: ['config'] })
