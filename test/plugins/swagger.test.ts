import SwaggerParser from '@apidevtools/swagger-parser'
import t, { type Test } from 'tap'
import { ERROR_CODES } from '../../lib/errors.js'
import { build } from '../helper.js'

interface OpenApi {
  openapi: string
  components: { securitySchemes: Record<string, { type: string, in?: string, name?: string, scheme?: string, flows?: Record<string, { tokenUrl: string }> }>, schemas: Record<string, unknown> }
  paths: Record<string, Record<string, { tags?: string[], security?: Array<Record<string, string[]>>, responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>
}

t.test('publishes an OpenAPI 3 document that swagger-parser validates', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json<OpenApi>()
  t.equal(doc.openapi, '3.0.3')
  // validate() dereferences in place: give it a copy.
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'valid OpenAPI 3')

  t.ok(doc.paths['/health/live']?.get, 'built from the route schemas')
  t.notOk(doc.paths['/metrics'], 'the scrape endpoint is not advertised')
  t.notOk(Object.keys(doc.paths).some((p) => p.startsWith('/docs')), 'the documentation routes are not documented')
  t.ok(doc.components.schemas.Error, 'the shared Error schema keeps its name')
})

t.test('documents the security schemes the configuration enables', async (t) => {
  const defaults = (await (await build(t)).inject({ method: 'GET', url: '/docs/json' })).json<OpenApi>()
  const schemes = defaults.components.securitySchemes
  t.match(schemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
  t.match(schemes.oauth2, { type: 'oauth2', flows: { clientCredentials: { tokenUrl: '/auth/token' } } })
  t.notOk(schemes.cookieAuth, 'headers only (the default): no cookie scheme')

  const both = await build(t, { env: { JWT_TOKEN_LOCATION: 'headers,cookies', CORS_ORIGINS: '' } })
  const doc = (await both.inject({ method: 'GET', url: '/docs/json' })).json<OpenApi>()
  t.match(doc.components.securitySchemes.cookieAuth, { type: 'apiKey', in: 'cookie', name: 'access_token_cookie' })
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never))

  const custom = await build(t, { env: { JWT_HEADER_NAME: 'X-Api-Token', JWT_HEADER_TYPE: '' } })
  const customDoc = (await custom.inject({ method: 'GET', url: '/docs/json' })).json<OpenApi>()
  t.match(customDoc.components.securitySchemes.bearerAuth, { type: 'apiKey', in: 'header', name: 'X-Api-Token' })
})

t.test('routes that name no error response get the shared Error schema', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<OpenApi>()
  const responses = doc.paths['/health/live']!.get!.responses
  t.same(responses['4XX']?.content?.['application/json']?.schema, { $ref: '#/components/schemas/Error' })
  t.same(responses['5XX']?.content?.['application/json']?.schema, { $ref: '#/components/schemas/Error' })
})

t.test('serves Swagger UI at /docs with its own CSP, and only there', async (t) => {
  const app = await build(t)
  const page = await app.inject({ method: 'GET', url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /default-src 'none'/)
  t.match(csp, /script-src 'self'(;|$)/, 'scripts from this origin only, never inline')
  t.notMatch(csp, /unsafe-eval/)
  t.match(csp, /frame-ancestors 'none'/)

  // Every script the page loads is served, under the same policy.
  const scripts = [...page.body.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!)
  t.ok(scripts.length >= 3)
  for (const src of scripts) {
    const res = await app.inject({ method: 'GET', url: src })
    t.equal(res.statusCode, 200, src)
    t.equal(res.headers['content-security-policy'], csp)
  }

  for (const url of ['/health/live', '/nope', '/metrics']) {
    const res = await app.inject({ method: 'GET', url })
    const strict = String(res.headers['content-security-policy'])
    t.match(strict, /default-src 'none'/, `${url} keeps the strict policy`)
    t.notMatch(strict, /'self'|unsafe-inline/, `${url} is not loosened`)
  }
})

t.test('serves no documentation when DOCS_ENABLED=false', async (t) => {
  const app = await build(t, { env: { DOCS_ENABLED: 'false' } })
  for (const url of ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/index.html', '/docs/static/swagger-ui-bundle.js']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'NOT_FOUND')
  }
  t.equal(app.hasDecorator('swagger'), false)
})

interface Operation {
  operationId?: string
  requestBody?: { content: Record<string, unknown> }
  parameters?: Array<{ name: string, in: string, required?: boolean }>
  responses: Record<string, { description?: string, $ref?: string, headers?: Record<string, unknown> }>
}

async function documentOf (t: Test): Promise<{ paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, { properties: Record<string, { enum?: string[] }> }> } }> {
  const app = await build(t)
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  await SwaggerParser.validate(structuredClone(doc) as never)
  return doc
}

function operations (doc: Awaited<ReturnType<typeof documentOf>>): Array<[string, Operation]> {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as [string, Operation]))
}

t.test('the OAuth endpoints document the form body OAuth libraries and Swagger UI send, as well as JSON', async (t) => {
  const doc = await documentOf(t)
  for (const path of ['/auth/token', '/auth/introspect', '/auth/revoke']) {
    t.same(Object.keys(doc.paths[path]!.post!.requestBody!.content).sort(), ['application/json', 'application/x-www-form-urlencoded'], path)
  }
})

t.test('a query parameter with a default (limit) is not required', async (t) => {
  const doc = await documentOf(t)
  const limit = doc.paths['/notes']!.get!.parameters!.find((p) => p.name === 'limit')
  t.ok(limit, 'limit is documented')
  t.notOk(limit?.required, 'and optional')
})

t.test('/auth/refresh and /auth/logout declare no request body', async (t) => {
  const doc = await documentOf(t)
  t.notOk(doc.paths['/auth/refresh']!.post!.requestBody)
  t.notOk(doc.paths['/auth/logout']!.post!.requestBody)
})

t.test('every operation has a unique operationId, and every response a description of its own', async (t) => {
  const doc = await documentOf(t)
  const ids = operations(doc).map(([, op]) => op.operationId)
  t.notOk(ids.includes(undefined), 'every operation is named')
  t.equal(new Set(ids).size, ids.length, 'no two alike')
  t.equal(doc.paths['/notes/{id}']!.get!.operationId, 'getNotesById')
  for (const [name, op] of operations(doc)) {
    for (const [status, response] of Object.entries(op.responses)) {
      if (response.$ref !== undefined) continue
      t.ok(response.description, `${name} ${status} is described`)
      t.not(response.description, 'Default Response', `${name} ${status} is not "Default Response"`)
    }
  }
})

t.test('Error.code lists the stable codes', async (t) => {
  const doc = await documentOf(t)
  t.same(doc.components.schemas.Error!.properties.code!.enum, Object.keys(ERROR_CODES))
  t.ok(doc.components.schemas.Error!.properties.code!.enum!.includes('VALIDATION_ERROR'))
})

t.test('responses name the request id header, the rate-limit headers where limits apply, and Retry-After on 429', async (t) => {
  const doc = await documentOf(t)
  for (const [name, op] of operations(doc)) {
    for (const [status, response] of Object.entries(op.responses)) {
      if (response.$ref !== undefined) continue
      t.ok(response.headers?.['X-Request-ID'], `${name} ${status}: X-Request-ID`)
    }
  }
  const list = doc.paths['/notes']!.get!.responses
  for (const header of ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'RateLimit', 'RateLimit-Policy']) {
    t.ok(list['200']!.headers?.[header], `GET /notes 200: ${header}`)
  }
  t.ok(list['429']!.headers?.['Retry-After'], 'GET /notes 429: Retry-After')
  t.notOk(doc.paths['/health/live']!.get!.responses['200']!.headers?.['X-RateLimit-Limit'], 'the probes have no rate limit')
})
