import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../helper.js'

type Line = Record<string, unknown>

function routes (app: FastifyInstance): void {
  app.get('/test/items/:id', async function item (request) { return request.params })
  app.get('/test/boom', async function boom () { throw new Error('boom') })
  app.post('/test/login', {
    schema: { body: { type: 'object', properties: { email: { type: 'string' }, password: { type: 'string', maxLength: 5 } }, additionalProperties: false } }
  }, async function login (request) {
    // A handler that logs what it received must not leak it either.
    request.log.info({ body: request.body, headers: request.headers }, 'login attempt')
    return { ok: true }
  })
}

t.test('one completion line per request with reqId, method, route pattern, status and time', async (t) => {
  const logs: Line[] = []
  const app = await build(t, { routes, logs })
  const cases = [
    { url: '/test/items/42', id: 'c-200', route: '/test/items/:id', status: 200 },
    { url: '/health/live', id: 'c-live', route: '/health/live', status: 200 },
    { url: '/no/such/path', id: 'c-404', route: null, status: 404 },
    { url: '/test/boom', id: 'c-500', route: '/test/boom', status: 500 },
    { url: `/test/items/${'x'.repeat(300)}`, id: 'c-long', route: null, status: 404 },
    { url: '/test/items/%zz', id: 'c-bad-url', route: null, status: 400 }
  ]
  for (const c of cases) {
    await app.inject({ url: c.url, headers: { 'x-request-id': c.id } })
    const completed = logs.filter((l) => l.reqId === c.id && l.msg === 'request completed')
    t.equal(completed.length, 1, `${c.id}: exactly one completion line`)
    const line = completed[0] ?? {}
    t.equal(line.level, 30, 'at info')
    t.equal(line.method, 'GET')
    t.equal(line.route, c.route, `${c.id}: the route pattern, not the URL`)
    t.equal(line.statusCode, c.status)
    t.type(line.responseTime, 'number')
    t.ok((line.responseTime as number) >= 0)
  }
  t.notOk(logs.some((l) => l.msg === 'incoming request'), 'no second line per request')
})

t.test('a burst of requests gets its completion lines in the same turn of the event loop, in order', async (t) => {
  const logs: Line[] = []
  const app = await build(t, { routes, logs })
  const ids = Array.from({ length: 25 }, (_, i) => `burst-${i}`)
  await Promise.all(ids.map((id) => app.inject({ url: '/test/items/1', headers: { 'x-request-id': id } })))
  const before = logs.filter((l) => l.msg === 'request completed').length
  const completed = logs.filter((l) => l.msg === 'request completed')
  t.equal(completed.length, ids.length, `all ${ids.length} lines once the turn ends (${before} before it)`)
  t.same(completed.map((l) => l.reqId), ids, 'in the order the responses finished')
})

t.test('credentials in headers, cookies, bodies and query strings never reach the logs', async (t) => {
  const logs: Line[] = []
  const app = await build(t, { routes, logs, env: { JWT_HEADER_NAME: 'X-Api-Token', LOG_LEVEL: 'trace' } })
  const canary = (what: string) => `canary${what}${randomBytes(6).toString('hex')}`
  const canaries = {
    authorization: canary('auth'),
    cookie: canary('cookie'),
    csrf: canary('csrf'),
    custom: canary('custom'),
    password: canary('pw'),
    query: canary('query')
  }
  const headers = {
    authorization: `Bearer ${canaries.authorization}`,
    cookie: `access_token_cookie=${canaries.cookie}; other=1`,
    'x-csrf-token': canaries.csrf,
    'x-api-token': canaries.custom
  }
  const requests = [
    { url: `/test/items/1?token=${canaries.query}` },
    { url: `/no/such/path?access_token=${canaries.query}` },
    { url: `/test/boom?password=${canaries.query}` },
    { url: `/test/items/%zz?token=${canaries.query}` },
    { method: 'POST' as const, url: `/test/login?x=${canaries.query}`, headers: { 'content-type': 'application/json' }, payload: { email: 'a@example.com', password: canaries.password } },
    { method: 'POST' as const, url: '/test/login', headers: { 'content-type': 'application/json' }, payload: { email: 'a@example.com', password: 'short' } },
    { method: 'POST' as const, url: '/test/login', headers: { 'content-type': 'text/plain' }, payload: canaries.password }
  ]
  for (const request of requests) {
    await app.inject({ ...request, headers: { ...headers, ...request.headers } })
  }
  t.ok(logs.length >= requests.length, `${logs.length} lines captured`)
  t.ok(logs.some((l) => l.msg === 'login attempt'), 'the handler did log the request')
  const text = logs.map((l) => JSON.stringify(l)).join('\n')
  for (const [name, value] of Object.entries(canaries)) {
    t.notOk(text.includes(value), `${name} never logged`)
  }
  t.notOk(logs.some((l) => typeof l.url === 'string' && l.url.includes('?')), 'no query string in any url')
})

t.test('LOG_LEVEL=silent writes nothing', async (t) => {
  const logs: Line[] = []
  const app = await build(t, { routes, logs, env: { LOG_LEVEL: 'silent' } })
  await app.inject({ url: '/test/boom' })
  t.same(logs, [])
})
