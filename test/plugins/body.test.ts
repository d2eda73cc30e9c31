import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../helper.js'
import { rawRequest } from '../fixtures/raw-http.js'

function routes (app: FastifyInstance): void {
  app.post('/test/any', { schema: { body: { anyOf: [{ type: 'object' }, { type: 'array' }] } } }, async function any () { return { ok: true } })
  app.get('/test/user', {
    schema: {
      response: {
        200: { type: 'object', properties: { id: { type: 'string' }, email: { type: 'string' } }, required: ['id', 'email'], additionalProperties: false }
      }
    }
  }, async function user () {
    // What a repository row looks like: more than the response may show.
    return { id: 'u1', email: 'a@example.com', password_hash: '$argon2id$v=19$secret', is_admin: true }
  })
}

t.test('a response schema lets no unnamed field (a password hash) leave the service', async (t) => {
  const app = await build(t, { routes })
  const res = await app.inject({ url: '/test/user' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { id: 'u1', email: 'a@example.com' })
  t.notMatch(res.body, /argon2|password_hash|is_admin/)
})

t.test('deeply nested JSON is answered quickly and never with a 5xx', async (t) => {
  const app = await build(t, { routes })
  for (const depth of [10_000, 100_000]) {
    for (const payload of [
      '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
      '['.repeat(depth) + ']'.repeat(depth),
      '['.repeat(depth) + '{"__proto__":1}' + ']'.repeat(depth),
      '['.repeat(depth)
    ]) {
      const started = Date.now()
      const res = await app.inject({ method: 'POST', url: '/test/any', headers: { 'content-type': 'application/json' }, payload })
      const elapsed = Date.now() - started
      t.ok(res.statusCode < 500, `depth ${depth}, ${payload.slice(-20)}: ${res.statusCode}`)
      t.ok(elapsed < 2000, `in ${elapsed} ms`)
    }
  }
})

t.test('a declared Content-Length over BODY_LIMIT is refused with 413 before the body is read', async (t) => {
  const app = await build(t, { routes, env: { BODY_LIMIT: '1024' } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const res = await rawRequest(port, 'POST /test/any HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{"a":')
  t.equal(res.status, 413)
  const body = JSON.parse(res.body)
  t.equal(body.code, 'PAYLOAD_TOO_LARGE')
  t.equal(body.requestId, res.headers['x-request-id'])
  const chunked = await rawRequest(port, `POST /test/any HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n${'x'.repeat(2048)}\r\n0\r\n\r\n`)
  t.equal(chunked.status, 413, 'a chunked body over the limit too')
  t.equal(JSON.parse(chunked.body).code, 'PAYLOAD_TOO_LARGE')
})

t.test('a DELETE with content-type: application/json and no body is a DELETE, not a 400; other empty JSON bodies still are', async (t) => {
  const app = await build(t, {
    routes: (app) => {
      app.delete('/test/thing', async function remove (request) { return { body: request.body ?? null } })
      routes(app)
    }
  })
  const res = await app.inject({ method: 'DELETE', url: '/test/thing', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { body: null })
  const sent = await app.inject({ method: 'DELETE', url: '/test/thing', headers: { 'content-type': 'application/json' }, payload: '{"a":1}' })
  t.same(sent.json(), { body: { a: 1 } }, 'a DELETE that sends JSON is parsed')
  const bad = await app.inject({ method: 'DELETE', url: '/test/thing', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":1}' })
  t.equal(bad.statusCode, 400, 'with the same poisoning rule')
  const post = await app.inject({ method: 'POST', url: '/test/any', headers: { 'content-type': 'application/json' } })
  t.equal(post.statusCode, 400, 'an empty POST body is still refused')
  t.equal(post.json().code, 'BAD_REQUEST')
})
