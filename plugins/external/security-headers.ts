import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import { helmetOptions, NO_STORE } from '../../lib/security-headers.js'

/**
 * @fastify/helmet with the options of lib/security-headers.ts, which the answers
 * given before any hook (server-options/framework-errors.ts) share.
 */
export default fp(async function securityHeaders (fastify) {
  await fastify.register(helmet, { global: true, ...helmetOptions(fastify.config.ENVIRONMENT) })

  fastify.addHook('onRequest', function noStore (_request, reply, done) {
    reply.headers(NO_STORE)
    done()
  })
}, { name: 'security-headers', dependencies: ['config'] })
