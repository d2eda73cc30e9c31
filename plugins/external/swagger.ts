import fp from 'fastify-plugin'
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Config } from '../../config/schema.js'
import { SCOPES } from '../../schemas/auth.js'
import { BEARER, COOKIE, OAUTH2, type SecurityRequirement } from '../../schemas/openapi.js'

type SecuritySchemes = Record<string, Record<string, unknown>>
type Transform = NonNullable<FastifyDynamicSwaggerOptions['transform']>

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

/**
 * Per route, for the document only (validation and serialisation are untouched):
 * trims the trailing slash of index routes, drops security requirements naming a scheme this configuration does not enable,
 * and gives routes that declare no error responses the shared Error schema.
 */
export function documentRoute (schemes: SecuritySchemes): Transform {
  return function transform ({ schema, url: registered }) {
    // A folder's index route answers both /notes and /notes/: document it once, without the slash.
    const url = registered.length > 1 && registered.endsWith('/') ? registered.slice(0, -1) : registered
    if (schema === undefined || schema === null) return { schema, url }
    const out: Record<string, unknown> = { ...schema }
    const security = (schema as { security?: SecurityRequirement[] }).security
    if (security !== undefined) {
      out.security = security.filter((requirement) => Object.keys(requirement).every((name) => name in schemes))
    }
    const response = (schema as { response?: Record<string, unknown> }).response
    if (response !== undefined && !Object.keys(response).some((code) => /^[45]/.test(code))) {
      out.response = { ...response, '4xx': { $ref: 'Error#' }, '5xx': { $ref: 'Error#' } }
    }
    return { schema: out as typeof schema, url }
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
    transform: documentRoute(schemes)
  })

  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: DOCS_CSP,
    uiConfig: { deepLinking: false, validatorUrl: null } as never,
    theme: { title: 'Secure Fastify service API' }
  })
}, { name: 'swagger', dependencies: ['config', 'security-headers'] })
