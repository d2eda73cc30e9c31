import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'

/**
 * @fastify/helmet, tuned for a JSON API: nothing here is meant to be rendered, framed
 * or scripted, so the Content-Security-Policy forbids everything (Swagger UI at /docs
 * sets its own). HSTS only in production, which is behind TLS (ASVS 3.4.1: a year).
 */
export default fp(async function securityHeaders (fastify) {
  await fastify.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] }
    },
    strictTransportSecurity: fastify.config.ENVIRONMENT === 'production' ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginResourcePolicy: { policy: 'same-site' },
    // Cross-origin JSON is governed by CORS, not by these embedding policies.
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    // Headers for things a JSON API never serves (DNS prefetch from pages, IE8
    // downloads, Flash/PDF cross-domain policies, the retired XSS auditor).
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false
  })

  // Nearly every response carries tokens, user data or errors about them: none may be cached.
  fastify.addHook('onRequest', function noStore (_request, reply, done) {
    reply.header('cache-control', 'no-store')
    done()
  })
}, { name: 'security-headers', dependencies: ['config'] })
