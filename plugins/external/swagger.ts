import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Config } from '../../config/schema.js'
import { ERROR_CODES } from '../../lib/errors.js'
import { SCOPES } from '../../schemas/auth.js'
import { NoBody } from '../../schemas/common.js'
import { BEARER, COOKIE, OAUTH2, type SecurityRequirement } from '../../schemas/openapi.js'

type SecuritySchemes = Record<string, Record<string, unknown>>
type Transform = NonNullable<FastifyDynamicSwaggerOptions['transform']>
type TransformObject = NonNullable<FastifyDynamicSwaggerOptions['transformObject']>
type JsonObject = Record<string, unknown>

// The page is the only HTML the service serves: its scripts and styles come from
// /docs/static, and its requests go to this origin. Every other response keeps
// Helmet's `default-src 'none'`. Swagger UI's React components set inline style
// attributes, hence 'unsafe-inline' for styles (never for scripts).
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'"
].join('; ')

/** Only the token locations this configuration accepts are documented. */
export function securitySchemes (config: Config): SecuritySchemes {
  const schemes: SecuritySchemes = {}
  if (config.JWT_TOKEN_LOCATION.includes('headers')) {
    const standard = config.JWT_HEADER_NAME.toLowerCase() === 'authorization' && config.JWT_HEADER_TYPE.toLowerCase() === 'bearer'
    schemes[BEARER] = standard
      ? { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from /auth/login, /auth/refresh or /auth/token' }
      : {
          type: 'apiKey',
          in: 'header',
          name: config.JWT_HEADER_NAME,
          description: config.JWT_HEADER_TYPE === ''
            ? 'The access token (JWT) alone'
            : `"${config.JWT_HEADER_TYPE} <access token>"`
        }
  }
  if (config.JWT_TOKEN_LOCATION.includes('cookies')) {
    schemes[COOKIE] = {
      type: 'apiKey',
      in: 'cookie',
      name: 'access_token_cookie',
      description: 'Set by /auth/login; POST, PATCH and DELETE also need the X-CSRF-TOKEN header equal to the csrf_access_token cookie'
    }
  }
  schemes[OAUTH2] = {
    type: 'oauth2',
    description: 'Service clients (client credentials grant, RFC 6749 §4.4)',
    flows: { clientCredentials: { tokenUrl: '/auth/token', scopes: { ...SCOPES } } }
  }
  return schemes
}

/** getNotesById for GET /notes/{id}: stable, unique, and what generated clients name their methods. */
export function operationId (method: string, url: string): string {
  const words = url.split('/').filter(Boolean).map((part) => part.startsWith(':') ? `by-${part.slice(1)}` : part.replace(/^\./, ''))
  const camel = [method.toLowerCase(), ...words].join('-').split(/[-_.]/).filter(Boolean)
  return camel.map((w, i) => i === 0 ? w : w[0]!.toUpperCase() + w.slice(1)).join('')
}

/**
 * Per route, for the document only (validation and serialisation are untouched):
 * trims the trailing slash of index routes, drops security requirements naming a
 * scheme this configuration does not enable, gives routes that declare no error
 * responses the shared Error schema, names each operation, declares no request body
 * where the route takes none (NoBody), marks query parameters with a default as
 * optional, and describes every response (never @fastify/swagger's "Default Response").
 */
export function documentRoute (schemes: SecuritySchemes): Transform {
  return function transform ({ schema, url: registered, route }) {
    // A folder's index route answers both /notes and /notes/: document it once, without the slash.
    const url = registered.length > 1 && registered.endsWith('/') ? registered.slice(0, -1) : registered
    if (schema === undefined || schema === null) return { schema, url }
    const out: JsonObject = { ...schema }
    const method = Array.isArray(route.method) ? String(route.method[0]) : String(route.method)
    out.operationId ??= operationId(method, url)
    if (out.body === NoBody) delete out.body
    const security = (schema as { security?: SecurityRequirement[] }).security
    if (security !== undefined) {
      out.security = security.filter((requirement) => Object.keys(requirement).every((name) => name in schemes))
    }
    const query = out.querystring as { properties?: Record<string, { default?: unknown }>, required?: string[] } | undefined
    if (query?.required !== undefined && query.properties !== undefined) {
      // Ajv fills in the default (useDefaults), so a client may leave it out.
      const properties = query.properties
      out.querystring = { ...query, required: query.required.filter((name) => properties[name]?.default === undefined) }
    }
    const response = out.response as Record<string, JsonObject> | undefined
    if (response !== undefined) {
      const described: Record<string, JsonObject> = {}
      for (const [code, value] of Object.entries(response)) {
        described[code] = value.description === undefined && value.$ref === undefined
          ? { ...value, description: STATUS_CODES[Number(code)] ?? code }
          : value
      }
      out.response = Object.keys(response).some((code) => /^[45]/.test(code))
        ? described
        : { ...described, '4xx': { $ref: 'Error#' }, '5xx': { $ref: 'Error#' } }
    }
    return { schema: out as typeof schema, url }
  }
}

/**
 * The whole document, once built: the Error schema's `code` lists the stable codes
 * (lib/errors.ts), and every response names the headers the service adds to it
 * (the request id; the rate-limit fields, except on the unlimited health probes).
 */
export function documentHeaders (config: Config): TransformObject {
  const requestId = {
    description: 'The request id: the one the client sent when it is valid, otherwise a new UUID; logged with every line of the request',
    schema: { type: 'string' }
  }
  const rateLimit: Record<string, JsonObject> = {
    'X-RateLimit-Limit': { description: 'Requests allowed in the window', schema: { type: 'integer' } },
    'X-RateLimit-Remaining': { description: 'Requests left in the window', schema: { type: 'integer' } },
    'X-RateLimit-Reset': { description: 'Seconds until the window resets', schema: { type: 'integer' } },
    RateLimit: { description: 'The same, as the IETF draft\'s structured field (`"policy";r=remaining;t=reset`)', schema: { type: 'string' } },
    'RateLimit-Policy': { description: 'The policy applied (`"policy";q=limit;w=window seconds`)', schema: { type: 'string' } }
  }
  const retryAfter = { description: 'Seconds to wait before retrying', schema: { type: 'integer' } }
  return function transformObject (document) {
    const doc = (document as { openapiObject: JsonObject }).openapiObject
    const components = doc.components as { schemas?: Record<string, { properties?: Record<string, JsonObject> }> } | undefined
    const code = components?.schemas?.Error?.properties?.code
    if (code !== undefined) code.enum = Object.keys(ERROR_CODES)
    const paths = (doc.paths ?? {}) as Record<string, Record<string, { responses?: Record<string, JsonObject> }>>
    for (const [path, operations] of Object.entries(paths)) {
      const limited = !path.startsWith('/health/')
      for (const operation of Object.values(operations)) {
        for (const [status, response] of Object.entries(operation.responses ?? {})) {
          if (response.$ref !== undefined) continue
          const headers: Record<string, JsonObject> = { ...(response.headers as Record<string, JsonObject> | undefined), [config.REQUEST_ID_HEADER]: requestId }
          if (limited) Object.assign(headers, rateLimit)
          if (status === '429' || status === '503') headers['Retry-After'] = retryAfter
          response.headers = headers
        }
      }
    }
    return doc
  }
}

/**
 * OpenAPI 3 built from the route schemas, at /docs/json, and Swagger UI at /docs,
 * only when DOCS_ENABLED (production default: off, so the attack surface is not
 * advertised; ASVS 13.4.5). Without it, /docs is an ordinary 404.
 */
export default fp(async function swaggerPlugin (fastify) {
  const config = fastify.config
  if (!config.DOCS_ENABLED) return

  const schemes = securitySchemes(config)
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Secure Fastify service',
        description: 'Accounts, service clients and notes. Errors share one shape (the Error schema) with a stable `code`.',
        version: '1.0.0'
      },
      tags: [
        { name: 'health', description: 'Probes for the orchestrator (no authentication, no rate limit)' },
        { name: 'auth', description: 'Accounts, sessions and service tokens' },
        { name: 'notes', description: 'The sample resource: every security mechanism exercised end to end' }
      ],
      components: { securitySchemes: schemes as never }
    },
    // Shared schemas keep their $id as their name (#/components/schemas/Error).
    refResolver: {
      buildLocalReference (json, _baseUri, _fragment, i) {
        return typeof json.$id === 'string' ? json.$id : `def-${i}`
      }
    },
    transform: documentRoute(schemes),
    transformObject: documentHeaders(config)
  })

  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: DOCS_CSP,
    uiConfig: { deepLinking: false, validatorUrl: null } as never,
    theme: { title: 'Secure Fastify service API' }
  })
}, { name: 'swagger', dependencies: ['config', 'security-headers'] })
