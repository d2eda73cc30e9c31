import type { HelmetOptions } from 'helmet'
import type { Environment } from '../config/schema.js'

/**
 * Helmet's options for a JSON API, in one place: plugins/external/security-headers.ts
 * gives them to @fastify/helmet for every routed request, and
 * server-options/framework-errors.ts to helmet itself for the answers the router and
 * the HTTP parser give before any hook, so both carry the same headers. Nothing here
 * is meant to be rendered, framed or scripted, so the Content-Security-Policy forbids
 * everything (Swagger UI at /docs sets its own). HSTS only in production, which is
 * behind TLS (ASVS 3.4.1: a year).
 */
export function helmetOptions (environment: Environment) {
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] }
    },
    strictTransportSecurity: environment === 'production' ? { maxAge: 31_536_000, includeSubDomains: true } : false,
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
  } as const satisfies HelmetOptions
}

/** Nearly every response carries tokens, user data or errors about them: none may be cached. */
export const NO_STORE = { 'cache-control': 'no-store' } as const
