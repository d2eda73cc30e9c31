import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import cors from '../../plugins/external/cors.js'
import securityHeaders from '../../plugins/external/security-headers.js'
import { build, buildPlugins } from '../helper.js'

const APP = 'https://app.example.com'
const env = { CORS_ORIGINS: `${APP},http://localhost:3000` }

// Origins that must never be allowed: unlisted, opaque, and look-alikes of the listed ones.
const REFUSED = [
  'https://evil.test',
  'null',
  'https://app.example.com.evil.io',
  'https://evilapp.example.com',
  'https://evil.io/https://app.example.com',
  'http://app.example.com',
  'https://app.example.com:8443',
  'https://APP.EXAMPLE.COM',
  'http://localhost:30000',
  'http://localhost:3000.evil.io',
  'http://localhost'
]

function corsHeaders (res: LightMyRequestResponse): string[] {
  return Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))
}

function varies (res: LightMyRequestResponse, header: string): boolean {
  return String(res.headers.vary ?? '').toLowerCase().split(/\s*,\s*/).includes(header.toLowerCase())
}

function preflight (origin: string, headers: Record<string, string> = {}) {
  return {
    method: 'OPTIONS' as const,
    url: '/health/live',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type', ...headers }
  }
}

t.test('a listed origin gets its exact origin, credentials and the exposed headers', async (t) => {
  const app = await build(t, { env })
  const res = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: APP } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['access-control-allow-origin'], APP)
  t.equal(res.headers['access-control-allow-credentials'], 'true')
  t.ok(varies(res, 'Origin'), 'Vary: Origin')
  const exposed = String(res.headers['access-control-expose-headers']).toLowerCase().split(/\s*,\s*/)
  t.same(exposed.sort(), ['etag', 'location', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-request-id'])
})

t.test('never allows an unlisted, null or look-alike origin on a simple request', async (t) => {
  const app = await build(t, { env })
  for (const origin of REFUSED) {
    const res = await app.inject({ method: 'GET', url: '/health/live', headers: { origin } })
    t.equal(res.statusCode, 200, origin)
    t.same(corsHeaders(res), [], `${origin}: no Access-Control-* header`)
    t.ok(varies(res, 'Origin'), `${origin}: Vary: Origin, so a cache never hands one origin's answer to another`)
  }
})

t.test('sends Vary: Origin on responses without an Origin, and on errors', async (t) => {
  const app = await build(t, { env })
  const plain = await app.inject({ method: 'GET', url: '/health/live' })
  t.ok(varies(plain, 'Origin'))
  t.same(corsHeaders(plain), [])
  const missing = await app.inject({ method: 'GET', url: '/nowhere', headers: { origin: APP } })
  t.equal(missing.statusCode, 404)
  t.ok(varies(missing, 'Origin'))
  t.equal(missing.headers['access-control-allow-origin'], APP, 'a browser may read the error of a listed origin')
})

t.test('answers the preflight of a listed origin with the allowed methods and headers', async (t) => {
  const app = await build(t, { env })
  const res = await app.inject(preflight(APP, { 'x-request-id': 'preflight-1' }))
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], APP)
  t.equal(res.headers['access-control-allow-credentials'], 'true')
  t.equal(res.headers['access-control-allow-methods'], 'GET, HEAD, POST, PATCH, DELETE')
  t.same(String(res.headers['access-control-allow-headers']).split(', '), ['Authorization', 'Content-Type', 'X-CSRF-TOKEN', 'X-Request-ID', 'If-Match', 'If-None-Match'])
  t.equal(res.headers['access-control-max-age'], '600')
  t.equal(res.headers['x-request-id'], 'preflight-1', 'the request id hook ran before CORS answered')
  t.equal(res.headers['x-content-type-options'], 'nosniff', 'security headers too')
  t.equal(res.body, '')
})

t.test('gives a preflight from an unlisted, null or look-alike origin no Access-Control-* header at all', async (t) => {
  const app = await build(t, { env })
  for (const origin of REFUSED) {
    const res = await app.inject(preflight(origin, { 'x-request-id': 'refused-preflight' }))
    t.same(corsHeaders(res), [], `${origin}: no Access-Control-* header`)
    t.equal(res.headers['x-request-id'], 'refused-preflight', `${origin}: still carries the request id`)
    t.equal(res.statusCode, 404, origin)
    t.match(res.json(), { statusCode: 404, code: 'NOT_FOUND', requestId: 'refused-preflight' })
  }
})

t.test('refuses a preflight without Access-Control-Request-Method in the error shape', async (t) => {
  const app = await build(t, { env })
  const res = await app.inject({ method: 'OPTIONS', url: '/health/live', headers: { origin: APP } })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { statusCode: 400, error: 'Bad Request', code: 'BAD_REQUEST', requestId: String })
  t.ok(res.headers['x-request-id'])
})

t.test('allows a custom JWT header and request-id header in preflights and exposes the id', async (t) => {
  const app = await build(t, { env: { ...env, JWT_HEADER_NAME: 'X-Api-Token', REQUEST_ID_HEADER: 'X-Correlation-ID' } })
  const res = await app.inject(preflight(APP, { 'access-control-request-headers': 'x-api-token' }))
  t.equal(res.statusCode, 204)
  const allowedHeaders = String(res.headers['access-control-allow-headers']).toLowerCase().split(', ')
  t.ok(allowedHeaders.includes('x-api-token'))
  t.ok(allowedHeaders.includes('x-correlation-id'))
  t.notOk(allowedHeaders.includes('authorization'), 'only the configured JWT header')
  t.ok(res.headers['x-correlation-id'], 'the id travels in the configured header')
  const simple = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: APP } })
  t.ok(String(simple.headers['access-control-expose-headers']).split(', ').includes('X-Correlation-ID'))
})

t.test('gives no cross-origin access at all when CORS_ORIGINS is empty', async (t) => {
  const app = await build(t, { env: { CORS_ORIGINS: '' } })
  for (const origin of ['http://localhost:3000', 'http://127.0.0.1:3000', APP]) {
    const simple = await app.inject({ method: 'GET', url: '/health/live', headers: { origin } })
    t.same(corsHeaders(simple), [], origin)
    const res = await app.inject(preflight(origin))
    t.same(corsHeaders(res), [], origin)
    t.equal(res.statusCode, 404)
  }
})

t.test('answers * without credentials when any origin is allowed (header tokens only)', async (t) => {
  const app = await build(t, { env: { CORS_ORIGINS: '*', JWT_TOKEN_LOCATION: 'headers' } })
  const res = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://anyone.test' } })
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.equal(res.headers['access-control-allow-credentials'], undefined, 'never * with credentials')
  const pre = await app.inject(preflight('null'))
  t.equal(pre.statusCode, 204)
  t.equal(pre.headers['access-control-allow-origin'], '*')
  t.equal(pre.headers['access-control-allow-credentials'], undefined)
})

t.test('alone (after security-headers, as declared), a listed origin is allowed and a look-alike gets no CORS header', async (t) => {
  const app = await buildPlugins(t, [securityHeaders, cors], { env, routes (app) { app.get('/thing', async () => ({ ok: true })) } })
  const listed = await app.inject({ url: '/thing', headers: { origin: APP } })
  t.equal(listed.headers['access-control-allow-origin'], APP)
  t.equal(listed.headers['access-control-allow-credentials'], 'true')
  const preflight = await app.inject({ method: 'OPTIONS', url: '/thing', headers: { origin: APP, 'access-control-request-method': 'PATCH' } })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['x-content-type-options'], 'nosniff', 'the preflight carries the security headers')
  for (const origin of REFUSED) {
    const res = await app.inject({ method: 'OPTIONS', url: '/thing', headers: { origin, 'access-control-request-method': 'GET' } })
    t.same(corsHeaders(res), [], origin)
  }
})
