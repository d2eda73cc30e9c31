import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'

/**
 * Helmet, tuned for a JSON API: nothing here is meant to be rendered, framed or
 * scripted, so the Content-Security-Policy forbids everything. HSTS only makes sense
 * behind TLS, which production has (ASVS 3.4.1: at least a year).
 */
export default fp(async function securityHeadersPlugin (fastify) {
  await fastify.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] }
    },
    strictTransportSecurity: fastify.config.ENVIRONMENT === 'production'
      ? { maxAge: 31_536_000, includeSubDomains: true }
      : false,
    crossOriginResourcePolicy: { policy: 'same-site' },
    // Cross-origin JSON is governed by CORS, not by these embedding policies.
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: false,
    originAgentCluster: false
  })

  // Every response carries tokens, user data or errors about them: none may be cached.
  fastify.addHook('onRequest', function noStore (_request, reply, done) {
    reply.header('cache-control', 'no-store')
    done()
  })
}, { name: 'security-headers', dependencies: ['env'] })
