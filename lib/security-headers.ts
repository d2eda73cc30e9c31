import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import helmet, { type HelmetOptions } from 'helmet'
import type { Environment } from '../config/schema.js'

/**
 * Helmet's options for a JSON API, in one place: securityHeaderValues() turns them
 * into the headers every response carries, routed (plugins/external/security-headers.ts)
 * or answered before any hook (server-options/framework-errors.ts). Nothing here
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

/**
 * The headers helmet sets for these options, plus no-store, read once from a response
 * of Node's own that is never sent. With these options (no CSP nonces) helmet's headers
 * depend on its options alone, never on the request, so computing them per request
 * (as @fastify/helmet does: about a tenth of a routed request's CPU, BENCHMARKS.md,
 * "Security headers once") buys nothing. test/plugins/security-headers.test.ts pins
 * that: @fastify/helmet with the same options gives exactly these headers to any
 * request, so a helmet release that makes them vary fails a test.
 */
export function securityHeaderValues (environment: Environment): Readonly<Record<string, string>> {
  const req = new IncomingMessage(new Socket())
  const res = new ServerResponse(req)
  // helmet's middleware is synchronous since v8: it throws rather than calling next(err).
  helmet(helmetOptions(environment))(req, res, (err?: unknown) => { if (err !== undefined && err !== null) throw err })
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(res.getHeaders())) if (value !== undefined) headers[name] = String(value)
  return Object.freeze({ ...headers, ...NO_STORE })
}
