import { randomBytes } from 'node:crypto'
import t from 'tap'
import pg from 'pg'
import { ApiError } from '../../lib/errors.js'
import requestId from '../../plugins/app/request-id.js'
import { build, buildPlugins } from '../helper.js'
import { rawRequest } from '../fixtures/raw-http.js'
import type { FastifyInstance, InjectOptions } from 'fastify'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const Body = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 10 } },
  required: ['name'],
  additionalProperties: false
} as const

/** Test routes that answer each status of the contract the way real routes do. */
function statusRoutes (app: FastifyInstance): void {
  app.post('/test/echo', { schema: { body: Body } }, async function echo (request) { return request.body })
  app.get('/test/boom', async function boom () { throw new Error('boom') })
  app.get('/test/unauthorized', async function unauthorized () { throw new ApiError('AUTH_MISSING_TOKEN', 'A token is required') })
  app.get('/test/items/:id', async function item (request) { return request.params })
  app.get('/test/database-down', async function databaseDown () {
    // A real connection refused (port 1 never has PostgreSQL), as the pool reports it.
    const client = new pg.Client({ connectionString: 'postgresql://u:p@127.0.0.1:1/none', connectionTimeoutMillis: 1000 })
    await client.connect()
  })
}

const json = { 'content-type': 'application/json' }

t.test('a valid X-Request-ID is echoed and becomes the request id', async (t) => {
  const app = await build(t, { routes: statusRoutes })
  for (const id of ['abc', 'A-Z_a.z:09', 'x'.repeat(128), '550e8400-e29b-41d4-a716-446655440000', 'trace:1.2_3-4']) {
    const res = await app.inject({ url: '/test/boom', headers: { 'x-request-id': id } })
    t.equal(res.headers['x-request-id'], id, id)
    t.equal(res.json().requestId, id)
  }
})

t.test('an invalid X-Request-ID is replaced by a new UUID v4', async (t) => {
  const app = await build(t, { routes: statusRoutes })
  const invalid = [
    '',
    'x'.repeat(129),
    'has space',
    'ünïcödé',
    '{"id":"1"}',
    '<script>',
    'abc%0D%0AX-Injected:%201',
    'a/b',
    'a,b',
    'tab\there'
  ]
  const seen = new Set<string>()
  for (const id of invalid) {
    const res = await app.inject({ url: '/health/live', headers: { 'x-request-id': id } })
    const echoed = res.headers['x-request-id'] as string
    t.match(echoed, UUID_V4, JSON.stringify(id))
    t.not(echoed, id)
    seen.add(echoed)
  }
  t.equal(seen.size, invalid.length, 'a new id each time')
  const none = await app.inject({ url: '/health/live' })
  t.match(none.headers['x-request-id'], UUID_V4, 'no header: a new UUID v4')
})

t.test('the request id is on every response and equals requestId in error bodies', async (t) => {
  const app = await build(t, { routes: statusRoutes, env: { BODY_LIMIT: '1024' } })
  const cases: Array<[number, InjectOptions & { url: string }]> = [
    [200, { url: '/health/live' }],
    [200, { method: 'POST', url: '/test/echo', headers: json, payload: { name: 'ok' } }],
    [404, { url: '/no/such/route' }],
    [404, { method: 'DELETE', url: '/health/live' }],
    [404, { url: `/test/items/${'x'.repeat(201)}` }],
    [400, { method: 'POST', url: '/test/echo', headers: json, payload: { name: 1 } }],
    [400, { method: 'POST', url: '/test/echo', headers: json, payload: '{"name":' }],
    [400, { url: '/test/items/%E0%A4%A' }],
    [401, { url: '/test/unauthorized' }],
    [413, { method: 'POST', url: '/test/echo', headers: json, payload: JSON.stringify({ name: 'x'.repeat(2000) }) }],
    [415, { method: 'POST', url: '/test/echo', headers: { 'content-type': 'text/plain' }, payload: '{"name":"a"}' }],
    [500, { url: '/test/boom' }],
    [503, { url: '/test/database-down' }]
  ]
  for (const [status, request] of cases) {
    const id = `id-${status}-${randomBytes(4).toString('hex')}`
    const res = await app.inject({ ...request, headers: { ...request.headers, 'x-request-id': id } })
    const label = `${status} ${request.method ?? 'GET'} ${request.url.slice(0, 40)}`
    t.equal(res.statusCode, status, label)
    t.equal(res.headers['x-request-id'], id, `${label}: header`)
    if (status >= 400) {
      const body = res.json()
      t.equal(body.requestId, id, `${label}: body`)
      t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'requestId', 'statusCode'], `${label}: error shape`)
      t.equal(body.statusCode, status)
    }
  }
})

t.test('the request id is reqId on every log line of the request', async (t) => {
  const logs: Array<Record<string, unknown>> = []
  const app = await build(t, { routes: statusRoutes, logs })
  for (const [url, id] of [['/test/boom', 'log-500'], ['/health/live', 'log-200'], ['/nope', 'log-404'], ['/test/items/%zz', 'log-400']]) {
    await app.inject({ url, headers: { 'x-request-id': id } })
    const lines = logs.filter((l) => JSON.stringify(l).includes(url) || l.reqId === id)
    t.ok(lines.length >= 1, `${url}: logged`)
    t.ok(lines.every((l) => l.reqId === id), `${url}: every line has reqId ${id}`)
  }
  const boom = logs.filter((l) => l.reqId === 'log-500')
  t.ok(boom.some((l) => l.msg === 'request failed'), 'the error line too')
})

t.test('REQUEST_ID_HEADER names another header', async (t) => {
  const app = await build(t, { routes: statusRoutes, env: { REQUEST_ID_HEADER: 'X-Correlation-ID' } })
  const res = await app.inject({ url: '/test/boom', headers: { 'x-correlation-id': 'corr-1', 'x-request-id': 'ignored' } })
  t.equal(res.headers['x-correlation-id'], 'corr-1')
  t.equal(res.json().requestId, 'corr-1')
  t.notOk(res.headers['x-request-id'], 'the default header is not used')
  const bad = await app.inject({ url: '/health/live', headers: { 'x-correlation-id': 'bad id' } })
  t.match(bad.headers['x-correlation-id'], UUID_V4)
  const notFound = await app.inject({ url: `/test/items/${'x'.repeat(300)}`, headers: { 'x-correlation-id': 'corr-2' } })
  t.equal(notFound.headers['x-correlation-id'], 'corr-2', 'on routing errors too')
})

t.test('over a real socket: CR/LF tricks, raw UTF-8 and oversized headers never inject a header and still get an id', async (t) => {
  const app = await build(t, { routes: statusRoutes })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }

  // A bare CR inside the value: Node refuses the request before Fastify sees it.
  const bareCr = await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc\rX-Injected: yes\r\n\r\n')
  t.equal(bareCr.status, 400)
  t.notOk(bareCr.headers['x-injected'])
  t.match(bareCr.headers['x-request-id'], UUID_V4)
  t.same(JSON.parse(bareCr.body), { statusCode: 400, error: 'Bad Request', code: 'BAD_REQUEST', message: 'The request could not be read', requestId: bareCr.headers['x-request-id'] })

  // A NUL byte.
  const nul = await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc\u0000def\r\n\r\n')
  t.equal(nul.status, 400)
  t.match(nul.headers['x-request-id'], UUID_V4)

  // A CRLF ends the header: what follows is another header, not part of the id.
  const crlf = await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc\r\nX-Injected: yes\r\nConnection: close\r\n\r\n')
  t.equal(crlf.status, 200)
  t.equal(crlf.headers['x-request-id'], 'abc')
  t.notOk(crlf.headers['x-injected'], 'request headers are never reflected')

  // UTF-8 bytes (read by Node as Latin-1).
  const utf8 = await rawRequest(port, Buffer.concat([
    Buffer.from('GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-ID: '),
    Buffer.from('idé-ü', 'utf8'),
    Buffer.from('\r\n\r\n')
  ]))
  t.equal(utf8.status, 200)
  t.match(utf8.headers['x-request-id'], UUID_V4)

  // Two X-Request-ID headers: Node joins them with ", ", which is not a valid id.
  const twice = await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-ID: one\r\nX-Request-ID: two\r\n\r\n')
  t.equal(twice.status, 200)
  t.match(twice.headers['x-request-id'], UUID_V4)

  // Headers over Node's 16 KiB limit.
  const huge = await rawRequest(port, `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.equal(huge.status, 431)
  t.match(huge.headers['x-request-id'], UUID_V4)
  t.equal(JSON.parse(huge.body).code, 'BAD_REQUEST')

  // The process is still serving.
  const after = await fetch(`http://127.0.0.1:${port}/health/live`)
  t.equal(after.status, 200)
})

t.test('alone, the plugin echoes the id on a success, a thrown error and a reply sent from an onRequest hook', async (t) => {
  const app = await buildPlugins(t, [requestId], {
    routes (app) {
      app.get('/ok', async () => ({ ok: true }))
      app.get('/fail', async () => { throw new ApiError('NOT_FOUND', 'nothing here') })
      app.get('/early', { onRequest: (_request, reply, done) => { reply.code(204).send(); done() } }, async () => ({ never: true }))
    }
  })
  for (const url of ['/ok', '/fail', '/early']) {
    const res = await app.inject({ url, headers: { 'x-request-id': `alone${url.replace('/', '-')}` } })
    t.equal(res.headers['x-request-id'], `alone${url.replace('/', '-')}`, url)
  }
})
