import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'

/**
 * @fastify/cookie, only when cookies are a token location: with JWT_TOKEN_LOCATION
 * =headers no cookie is ever parsed, read or set (SPEC §3), so a stray cookie can
 * never authenticate anything. SECRET_KEY is its secret, for signed cookies; the JWT
 * cookies themselves are not signed again (the JWT carries its own signature) and
 * the CSRF cookies must stay readable as they are by the browser's script.
 */
export default fp(async function cookiePlugin (fastify) {
  if (!fastify.config.JWT_TOKEN_LOCATION.includes('cookies')) return
  await fastify.register(fastifyCookie, { secret: fastify.config.SECRET_KEY, hook: 'onRequest' })
}, { name: 'cookie', dependencies: ['env'] })
