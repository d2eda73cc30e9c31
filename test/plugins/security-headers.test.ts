import t from 'tap'
import type { FastifyInstance } from 'fastify'
import securityHeaders from '../../plugins/external/security-headers.js'
import { build, buildPlugins, productionEnv } from '../helper.js'

function routes (app: FastifyInstance): void {
  app.get('/test/boom', async function boom () { throw new Error('boom') })
  app.post('/test/echo', { schema: { body: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false } } }, async function echo (request) { return request.body })
}

const requests = [
  { url: '/health/live' },
  { url: '/health/ready' },
  { url: '/no/such/route' },
  { url: '/test/boom' },
  { method: 'POST' as const, url: '/test/echo', headers: { 'content-type': 'application/json' }, payload: '{"a":1}' },
  { method: 'POST' as const, url: '/test/echo', headers: { 'content-type': 'text/plain' }, payload: 'x' }
]

t.test('every response carries nosniff, a restrictive CSP, no-store and no X-Powered-By', async (t) => {
  const app = await build(t, { routes })
  for (const request of requests) {
    const res = await app.inject(request)
    const label = `${request.method ?? 'GET'} ${request.url} (${res.statusCode})`
    t.equal(res.headers['x-content-type-options'], 'nosniff', label)
    t.match(res.headers['content-security-policy'], /default-src 'none'/, label)
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/, label)
    t.equal(res.headers['cache-control'], 'no-store', label)
    t.notOk(res.headers['x-powered-by'], label)
    t.notOk(res.headers.server, `${label}: no server banner`)
    t.match(res.headers['content-type'], /^application\/json; charset=utf-8/, `${label}: JSON with a charset`)
  }
})

t.test('Strict-Transport-Security only in production, for at least a year', async (t) => {
  const test = await build(t, { routes })
  t.notOk((await test.inject({ url: '/health/live' })).headers['strict-transport-security'], 'not in test')
  const development = await build(t, { routes, env: { ENVIRONMENT: 'development' } })
  t.notOk((await development.inject({ url: '/health/live' })).headers['strict-transport-security'], 'not in development')

  const production = await build(t, { routes, env: await productionEnv() })
  for (const request of requests) {
    const res = await production.inject(request)
    const hsts = res.headers['strict-transport-security'] as string
    t.match(hsts, /max-age=(\d+)/, `${request.url} (${res.statusCode})`)
    t.ok(Number(/max-age=(\d+)/.exec(hsts)?.[1]) >= 31_536_000, 'at least one year (ASVS 3.4.1)')
    t.match(hsts, /includeSubDomains/)
  }
})

t.test('alone, the plugin gives a route and a thrown error the same headers', async (t) => {
  const app = await buildPlugins(t, [securityHeaders], {
    routes (app) {
      app.get('/ok', async () => ({ ok: true }))
      app.get('/fail', async () => { throw new Error('boom') })
    }
  })
  for (const url of ['/ok', '/fail']) {
    const res = await app.inject({ url })
    t.equal(res.headers['x-content-type-options'], 'nosniff', url)
    t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'", url)
    t.equal(res.headers['cross-origin-resource-policy'], 'same-site', url)
    t.equal(res.headers['cache-control'], 'no-store', url)
    t.notOk(res.headers['x-xss-protection'], `${url}: no header for the retired XSS auditor`)
  }
})

t.test('the headers computed once are exactly what @fastify/helmet gives every request, whatever the request (pins lib/security-headers.ts)', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: fastifyHelmet } = await import('@fastify/helmet')
  const { helmetOptions, securityHeaderValues, NO_STORE } = await import('../../lib/security-headers.js')
  const varied = [
    { url: '/a' },
    { url: '/a?x=1', headers: { 'user-agent': 'Mozilla/5.0 (MSIE 8.0)', 'x-forwarded-proto': 'https' } },
    { method: 'POST' as const, url: '/b', headers: { 'content-type': 'application/json', origin: 'https://elsewhere.example' }, payload: '{}' },
    { url: '/missing' },
    { url: '/fail' }
  ]
  for (const environment of ['production', 'development'] as const) {
    const reference = Fastify()
    t.teardown(() => reference.close())
    await reference.register(fastifyHelmet, { global: true, ...helmetOptions(environment) })
    reference.get('/a', async () => ({ ok: true }))
    reference.post('/b', async () => ({ ok: true }))
    reference.get('/fail', async () => { throw new Error('boom') })
    const ours = securityHeaderValues(environment)
    const theirs = (headers: Record<string, unknown>) =>
      Object.fromEntries(Object.keys(ours).filter((name) => !(name in NO_STORE)).map((name) => [name, headers[name]]))
    const expected = Object.fromEntries(Object.entries(ours).filter(([name]) => !(name in NO_STORE)))
    t.ok(Object.keys(expected).length >= 5, `${environment}: helmet sets its headers (${Object.keys(expected).join(', ')})`)
    for (const request of varied) {
      const res = await reference.inject(request)
      t.same(theirs(res.headers), expected, `${environment}: ${request.method ?? 'GET'} ${request.url} (${res.statusCode})`)
      // Nothing helmet sets is missing from ours.
      const helmetNames = Object.keys(res.headers).filter((name) => !['content-type', 'content-length', 'date', 'connection', 'keep-alive'].includes(name))
      t.same(helmetNames.filter((name) => !(name in ours)), [], `${environment}: no header of helmet's is left out`)
    }
  }
})
