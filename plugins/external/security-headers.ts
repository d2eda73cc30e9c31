import fp from 'fastify-plugin'
import { securityHeaderValues } from '../../lib/security-headers.js'

/**
 * helmet's headers (with the options of lib/security-headers.ts) and no-store on
 * every routed response, computed once: they do not depend on the request
 * (lib/security-headers.ts says why, and which test pins it). Routes that need
 * other values (Swagger UI's CSP) set their own, which win.
 */
export default fp(async function securityHeaders (fastify) {
  const headers = securityHeaderValues(fastify.config.ENVIRONMENT)
  fastify.addHook('onRequest', function setSecurityHeaders (_request, reply, done) {
    reply.headers(headers)
    done()
  })
}, { name: 'security-headers', dependencies: ['config'] })
