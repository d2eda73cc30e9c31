import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * Helmet's headers for these options. None of them depends on the request, so
 * helmet computes them once at start and every response gets the same set in one
 * hook: running helmet's middleware chain per request cost a measurable share of a
 * bare route's time (see BENCHMARKS.md).
 */
export function helmetHeaders (options: Readonly<HelmetOptions>): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader (name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
      return res
    },
    removeHeader (name: string) { delete headers[name.toLowerCase()] },
    getHeader (name: string) { return headers[name.toLowerCase()] }
  }
  let completed = false
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err
    completed = true
  })
  // Helmet's middleware is synchronous; anything else would leave headers unset.
  if (!completed) throw new Error('helmet did not complete synchronously')
  return headers
}

/**
 * Helmet, tuned for a JSON API: nothing here is meant to be rendered, framed or
 * scripted, so the Content-Security-Policy forbids everything. HSTS only makes sense
 * behind TLS, which production has (ASVS 3.4.1: at least a year). Routes that serve
 * a page (Swagger UI at /docs) set their own CSP over this one.
 */
export default fp(async function securityHeadersPlugin (fastify) {
  const headers = {
    ...helmetHeaders({
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
      originAgentCluster: false,
      // Headers for things a JSON API never serves (DNS prefetch from pages, IE8
      // downloads, Flash/PDF cross-domain policies, the retired XSS auditor): each
      // costs every response bytes and time for nothing.
      xDnsPrefetchControl: false,
      xDownloadOptions: false,
      xPermittedCrossDomainPolicies: false,
      xXssProtection: false
    }),
    // Every response carries tokens, user data or errors about them: none may be cached.
    'cache-control': 'no-store'
  }

  fastify.addHook('onRequest', function securityHeaders (_request, reply, done) {
    reply.headers(headers)
    done()
  })
}, { name: 'security-headers', dependencies: ['env'] })
