import t, { type Test } from 'tap'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { ApiError } from '../../lib/errors.js'
import { build, productionEnv } from '../helper.js'

const json = { 'content-type': 'application/json' }

const Body = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 10 },
    count: { type: 'integer' },
    nested: { type: 'object', additionalProperties: true }
  },
  required: ['name'],
  additionalProperties: false
} as const

interface Calls { echo: number }

/** Test-only routes: a validated body, a validated query, a throwing handler, database failures. */
function testRoutes (calls: Calls) {
  return function register (app: FastifyInstance): void {
    app.post('/test/echo', { schema: { body: Body } }, async function echo (request) {
      calls.echo++
      return request.body
    })
    app.get('/test/query', {
      schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } }, additionalProperties: false } }
    }, async function query (request) { return request.query })
    app.get('/test/boom', async function boom () {
      throw new Error('connect to db-internal.example:5432 failed for user admin password=hunter2')
    })
    app.get('/test/boom-string', async function boomString () {
      // eslint-disable-next-line no-throw-literal
      throw 'a thrown string with a secret'
    })
    app.get('/test/bad-gateway', async function badGateway () {
      throw Object.assign(new Error('upstream said: internal details'), { statusCode: 502 })
    })
    app.get('/test/unauthorized', async function unauthorized () { throw new ApiError('AUTH_MISSING_TOKEN', 'A token is required') })
    app.get('/test/invalid-token', async function invalidToken () {
      throw new ApiError('AUTH_INVALID_TOKEN', 'The token is invalid', { 'www-authenticate': 'Bearer realm="api", error="invalid_token"' })
    })
    app.get('/test/database-refused', async function databaseRefused () {
      const client = new pg.Client({ connectionString: 'postgresql://u:p@127.0.0.1:1/none', connectionTimeoutMillis: 1000 })
      await client.connect()
    })
    app.get('/test/statement-timeout', async function statementTimeout () {
      const client = await app.pg.connect()
      try {
        await client.query('SET statement_timeout = 50')
        await client.query('SELECT pg_sleep(2)')
      } finally {
        await client.query('RESET statement_timeout').catch(() => {})
        client.release()
      }
    })
    app.get('/test/sql-error', async function sqlError () {
      await app.pg.query('SELECT * FROM a_table_that_does_not_exist')
    })
  }
}

async function setup (t: Test, env: Record<string, string> = {}) {
  const calls: Calls = { echo: 0 }
  const app = await build(t, { routes: testRoutes(calls), env })
  return { app, calls }
}

function expectError (t: Test, res: { statusCode: number, json: () => any, headers: Record<string, unknown> }, statusCode: number, code: string, label?: string): any {
  const body = res.json()
  t.equal(res.statusCode, statusCode, `${label ?? code}: status`)
  t.equal(body.code, code, `${label ?? code}: code`)
  t.equal(body.statusCode, statusCode)
  t.equal(body.requestId, res.headers['x-request-id'])
  t.type(body.message, 'string')
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'requestId', 'statusCode'])
  t.match(res.headers['content-type'], /^application\/json/)
  return body
}

t.test('VALIDATION_ERROR: a number for a string is refused, never coerced', async (t) => {
  const { app, calls } = await setup(t)
  const res = await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: { name: 123 } })
  const body = expectError(t, res, 400, 'VALIDATION_ERROR')
  t.equal(body.error, 'Bad Request')
  t.match(body.message, /name/)
  const count = await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: { name: 'a', count: '5' } })
  expectError(t, count, 400, 'VALIDATION_ERROR', 'a string for an integer')
  const bool = await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: { name: true } })
  expectError(t, bool, 400, 'VALIDATION_ERROR', 'a boolean for a string')
  t.equal(calls.echo, 0, 'the handler never ran')
})

t.test('VALIDATION_ERROR: a missing field, an unknown field (refused, not stripped), an oversized string', async (t) => {
  const { app, calls } = await setup(t)
  expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: {} }), 400, 'VALIDATION_ERROR', 'missing')
  expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: { name: 'a', role: 'admin' } }), 400, 'VALIDATION_ERROR', 'unknown field')
  expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: { name: 'x'.repeat(11) } }), 400, 'VALIDATION_ERROR', 'too long')
  expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: [{ name: 'a' }] }), 400, 'VALIDATION_ERROR', 'an array')
  expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: 'null' }), 400, 'VALIDATION_ERROR', 'null')
  t.equal(calls.echo, 0)
  const ok = await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: { name: 'a', count: 2 } })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { name: 'a', count: 2 })
})

t.test('query strings are coerced as usual, and unknown query parameters are refused', async (t) => {
  const { app } = await setup(t)
  const ok = await app.inject({ url: '/test/query?n=5' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { n: 5 })
  expectError(t, await app.inject({ url: '/test/query?n=five' }), 400, 'VALIDATION_ERROR', 'not a number')
  expectError(t, await app.inject({ url: '/test/query?n=1&admin=true' }), 400, 'VALIDATION_ERROR', 'unknown parameter')
  expectError(t, await app.inject({ url: '/test/query?n=1&n=2' }), 400, 'VALIDATION_ERROR', 'repeated parameter')
})

t.test('BAD_REQUEST: malformed or empty JSON', async (t) => {
  const { app, calls } = await setup(t)
  for (const payload of ['{"name":', '{name: "a"}', "{'name': 'a'}", '{"name":"a"}}', '']) {
    expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload }), 400, 'BAD_REQUEST', JSON.stringify(payload))
  }
  t.equal(calls.echo, 0)
})

t.test('BAD_REQUEST: __proto__ (top-level or nested) and constructor.prototype, with no pollution', async (t) => {
  const { app, calls } = await setup(t)
  const payloads = [
    '{"name":"a","__proto__":{"polluted":"yes"}}',
    '{"name":"a","nested":{"__proto__":{"polluted":"yes"}}}',
    '{"name":"a","nested":{"deeper":{"__proto__":{"polluted":"yes"}}}}',
    '{"name":"a","constructor":{"prototype":{"polluted":"yes"}}}',
    '{"name":"a","nested":{"constructor":{"prototype":{"polluted":"yes"}}}}',
    '{"name":"a","\\u005f\\u005fproto\\u005f\\u005f":{"polluted":"yes"}}'
  ]
  for (const payload of payloads) {
    expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload }), 400, 'BAD_REQUEST', payload)
  }
  t.equal(calls.echo, 0, 'the handler never ran')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
  t.equal(Object.hasOwn(Object.prototype, 'polluted'), false)
})

t.test('NOT_FOUND for an unknown path and for a method the path does not serve (404, not 405)', async (t) => {
  const { app } = await setup(t)
  const body = expectError(t, await app.inject({ url: '/no/such/path?secret=1' }), 404, 'NOT_FOUND')
  t.equal(body.error, 'Not Found')
  t.notMatch(body.message, /secret/, 'the query string is not echoed')
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
    const res = await app.inject({ method, url: '/health/live', headers: json, payload: '{}' })
    expectError(t, res, 404, 'NOT_FOUND', `${method} /health/live`)
    t.notOk(res.headers.allow, 'no Allow header')
  }
  expectError(t, await app.inject({ method: 'GET', url: '/test/echo' }), 404, 'NOT_FOUND', 'GET on a POST route')
})

t.test('PAYLOAD_TOO_LARGE for a body over BODY_LIMIT', async (t) => {
  const { app, calls } = await setup(t, { BODY_LIMIT: '100' })
  const res = await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: JSON.stringify({ name: 'a', nested: { pad: 'x'.repeat(200) } }) })
  const body = expectError(t, res, 413, 'PAYLOAD_TOO_LARGE')
  t.equal(body.error, 'Payload Too Large')
  t.equal(calls.echo, 0)
  const small = await app.inject({ method: 'POST', url: '/test/echo', headers: json, payload: { name: 'a' } })
  t.equal(small.statusCode, 200, 'under the limit is fine')
})

t.test('UNSUPPORTED_MEDIA_TYPE for anything but JSON, and for a body without a Content-Type', async (t) => {
  const { app, calls } = await setup(t)
  const payload = '{"name":"a"}'
  for (const type of [
    'text/plain',
    'text/plain; x=application/json',
    'text/plain;charset=utf-8',
    'application/json garbage',
    'application/jsonx',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml'
  ]) {
    const body = expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': type }, payload }), 415, 'UNSUPPORTED_MEDIA_TYPE', type)
    t.equal(body.error, 'Unsupported Media Type')
  }
  const noType = await app.inject({ method: 'POST', url: '/test/echo', payload: Buffer.from(payload) })
  expectError(t, noType, 415, 'UNSUPPORTED_MEDIA_TYPE', 'no Content-Type')
  t.equal(calls.echo, 0, 'never parsed, never handled')
})

t.test('variants of the JSON media type are parsed and still validated', async (t) => {
  const { app, calls } = await setup(t)
  for (const type of ['application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8', ' application/json', 'application/json\t']) {
    expectError(t, await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': type }, payload: '{"name":1}' }), 400, 'VALIDATION_ERROR', JSON.stringify(type))
  }
  t.equal(calls.echo, 0)
  const ok = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: '{"name":"a"}' })
  t.equal(ok.statusCode, 200)
})

t.test('INTERNAL_ERROR outside development: a generic message, no stack, no original message', async (t) => {
  for (const env of [{}, await productionEnv()]) {
    const { app } = await setup(t, env)
    const environment = (env as { ENVIRONMENT?: string }).ENVIRONMENT ?? 'test'
    for (const url of ['/test/boom', '/test/boom-string', '/test/bad-gateway', '/test/sql-error']) {
      const res = await app.inject({ url })
      const body = expectError(t, res, 500, 'INTERNAL_ERROR', `${environment} ${url}`)
      t.equal(body.error, 'Internal Server Error')
      t.equal(body.message, 'An internal error occurred')
      for (const leak of ['hunter2', 'db-internal', 'secret', 'upstream', 'a_table_that_does_not_exist', 'stack', 'at ']) {
        t.notOk(res.body.includes(leak), `${environment} ${url}: no "${leak}"`)
      }
    }
  }
})

t.test('INTERNAL_ERROR in development may carry the original message, never the stack', async (t) => {
  const { app } = await setup(t, { ENVIRONMENT: 'development' })
  const res = await app.inject({ url: '/test/boom' })
  const body = expectError(t, res, 500, 'INTERNAL_ERROR')
  t.match(body.message, /hunter2/)
  t.notMatch(res.body, /at .*\.ts:\d+/, 'no stack')
})

t.test('SERVICE_UNAVAILABLE when the database cannot be reached or a statement times out', async (t) => {
  const { app } = await setup(t)
  const refused = await app.inject({ url: '/test/database-refused' })
  const body = expectError(t, refused, 503, 'SERVICE_UNAVAILABLE', 'connection refused')
  t.equal(body.error, 'Service Unavailable')
  t.equal(refused.headers['retry-after'], '1')
  t.notMatch(refused.body, /127\.0\.0\.1|ECONNREFUSED/, 'no connection details')
  const started = Date.now()
  const timeout = await app.inject({ url: '/test/statement-timeout' })
  expectError(t, timeout, 503, 'SERVICE_UNAVAILABLE', 'statement timeout')
  t.ok(Date.now() - started < 1500, 'answered when the statement was cancelled')
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 200, 'the pool is still healthy afterwards')
})

t.test('401 responses carry WWW-Authenticate: Bearer realm="api"', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/test/unauthorized' })
  const body = expectError(t, res, 401, 'AUTH_MISSING_TOKEN')
  t.equal(body.error, 'Unauthorized')
  t.equal(res.headers['www-authenticate'], 'Bearer realm="api"')
  const invalid = await app.inject({ url: '/test/invalid-token' })
  expectError(t, invalid, 401, 'AUTH_INVALID_TOKEN')
  t.equal(invalid.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token"', 'a specific challenge is kept')
})
