import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { UUID_PATTERN } from '../../schemas/common.js'
import { unsafeInput } from '../../server-options/validation.js'
import { build, clientToken, injectAs, loginAs, productionEnv } from '../helper.js'

// No input reaches the database that the database would refuse (docs/edge.md,
// "Input the database would refuse"): the rule lives in the validator, so every route
// has it, including one added tomorrow without a thought for it.

/** A route as a newcomer would write it: plain schemas, none of the shared ones. */
function newRoutes (app: FastifyInstance): void {
  app.post('/test/new', {
    schema: {
      querystring: Type.Object({ q: Type.Optional(Type.String()), n: Type.Optional(Type.Number()) }, { additionalProperties: false }),
      body: Type.Object({
        text: Type.Optional(Type.String()),
        amount: Type.Optional(Type.Number()),
        count: Type.Optional(Type.Integer()),
        tags: Type.Optional(Type.Array(Type.String())),
        anything: Type.Optional(Type.Unknown())
      }, { additionalProperties: false })
    }
  }, async function echo (request) { return { ok: true, body: request.body } })
}

t.test('limit=Infinity, -Infinity and 1e400 are 400 VALIDATION_ERROR, not a database error', async (t) => {
  const logs: object[] = []
  const app = await build(t, { env: await productionEnv(), logs })
  const user = await loginAs(app)
  for (const limit of ['Infinity', '-Infinity', '1e400', '-1e400', '+Infinity', '%20Infinity']) {
    const res = await injectAs(app, user.accessToken, { url: `/notes?limit=${limit}` })
    t.equal(res.statusCode, 400, `limit=${limit}`)
    t.equal(res.json().code, 'VALIDATION_ERROR')
    t.match(res.json().message, /limit/)
  }
  t.equal((await injectAs(app, user.accessToken, { url: '/notes?limit=5' })).statusCode, 200, 'a finite limit still works')
  t.same(logs.filter((l) => (l as { level: number }).level >= 50), [], 'no error line')
})

t.test('an id in a query string is the canonical UUID spelling or a 400; in a path, a 404', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const token = await clientToken(app, { scopes: ['notes:read'] })
  const id = user.userId
  for (const owner of [`urn:uuid:${id}`, `{${id}}`, id.replace(/-/g, ''), `${id}%00`, ` ${id}`, `${id.slice(0, 7)}-${id.slice(7, 8)}${id.slice(9)}`]) {
    const res = await injectAs(app, token, { url: `/notes?owner=${encodeURIComponent(owner)}` })
    t.equal(res.statusCode, 400, `owner=${owner}`)
    t.equal(res.json().code, 'VALIDATION_ERROR')
  }
  t.equal((await injectAs(app, token, { url: `/notes?owner=${id}` })).statusCode, 200)
  t.equal((await injectAs(app, token, { url: `/notes?owner=${id.toUpperCase()}` })).statusCode, 200, 'upper-case hexadecimal is canonical too')
  for (const path of [`urn:uuid:${id}`, `{${id}}`, '%00']) {
    t.equal((await injectAs(app, user.accessToken, { url: `/notes/${encodeURIComponent(path)}` })).statusCode, 404, `/notes/${path}`)
  }
})

t.test('every id a route takes in a query string or a body is the shared UUID schema', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json() as {
    paths: Record<string, Record<string, {
      parameters?: Array<{ in: string, name: string, schema: { pattern?: string } }>
      requestBody?: { content: Record<string, { schema: { properties?: Record<string, { pattern?: string }> } }> }
    }>>
  }
  // The OAuth endpoints' client_id is a credential: a malformed one is an unknown
  // client, 401 invalid_client (RFC 6749 §5.2), and never reaches a query.
  const exceptions = new Set(['POST /auth/token client_id', 'POST /auth/introspect client_id', 'POST /auth/revoke client_id'])
  const isId = (name: string) => name === 'id' || name === 'owner' || name.endsWith('_id')
  let checked = 0
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const fields: Array<[string, { pattern?: string }]> = []
      for (const p of operation.parameters ?? []) if (p.in === 'query') fields.push([p.name, p.schema])
      for (const content of Object.values(operation.requestBody?.content ?? {})) fields.push(...Object.entries(content.schema.properties ?? {}))
      for (const [name, schema] of fields) {
        if (!isId(name) || exceptions.has(`${method.toUpperCase()} ${path} ${name}`)) continue
        checked++
        t.equal(schema.pattern, UUID_PATTERN, `${method.toUpperCase()} ${path}: ${name}`)
      }
    }
  }
  t.ok(checked > 0, `${checked} ids checked`)
})

t.test('a route added without a thought for it still refuses what the database would', async (t) => {
  const app = await build(t, { routes: newRoutes })
  const post = (payload: string, query = '') => app.inject({ method: 'POST', url: `/test/new${query}`, headers: { 'content-type': 'application/json' }, payload })
  const cases: Array<[string, string, string, string]> = [
    ['1e400 in a number (JSON.parse reads Infinity)', '{"amount":1e400}', '', 'body/amount'],
    ['-1e400 in an integer', '{"count":-1e400}', '', 'body/count'],
    ['NUL in a string', '{"text":"a\\u0000b"}', '', 'body/text'],
    ['a lone high surrogate', '{"text":"a\\ud800b"}', '', 'body/text'],
    ['a lone low surrogate at the end', '{"text":"ab\\udc00"}', '', 'body/text'],
    ['NUL in an array item', '{"tags":["ok","a\\u0000"]}', '', 'body/tags/1'],
    ['NUL deep inside a field of any type', '{"anything":{"a":[{"b":"\\u0000"}]}}', '', 'body/anything/a/0/b'],
    ['a lone surrogate in a key inside a field of any type', '{"anything":{"\\ud800":1}}', '', 'body/anything'],
    ['Infinity inside a field of any type', '{"anything":[1,2,1e999]}', '', 'body/anything/2'],
    ['Infinity in a query number', '{}', '?n=Infinity', 'querystring/n'],
    ['NUL in a query string', '{}', '?q=a%00b', 'querystring/q']
  ]
  for (const [label, payload, query, where] of cases) {
    const res = await post(payload, query)
    t.equal(res.statusCode, 400, label)
    t.equal(res.json().code, 'VALIDATION_ERROR', label)
    t.match(res.json().message, where, `${label}: names ${where}`)
  }
  const fine = await post('{"text":"naïve \\ud83d\\ude00 text","amount":1.5e300,"count":-3,"tags":["a"],"anything":{"x":[null,true,"é"]}}', '?q=caf%C3%A9&n=2.5')
  t.equal(fine.statusCode, 200, 'surrogate pairs, large finite numbers and ordinary text pass')
  t.equal(fine.json().body.text, 'naïve \u{1F600} text')
})

t.test('the rule walks any depth without recursion', async (t) => {
  let deep: unknown = '\u0000'
  for (let i = 0; i < 200_000; i++) deep = [deep]
  t.match(unsafeInput(deep), { message: /U\+0000/ })
  t.equal(unsafeInput({ a: [1, 'b', { c: null }], d: true }), undefined)
  t.equal(unsafeInput(randomUUID()), undefined)
})

t.test('an unknown field is named in the 400, in bodies and query strings alike; an odd name is not repeated', async (t) => {
  const app = await build(t, { routes: newRoutes })
  const body = await app.inject({ method: 'POST', url: '/test/new', payload: { text: 'x', titel: 'typo' } })
  t.equal(body.statusCode, 400)
  t.equal(body.json().code, 'VALIDATION_ERROR')
  t.equal(body.json().message, "body must NOT have additional property 'titel'")
  const query = await app.inject({ method: 'POST', url: '/test/new?qq=1', payload: {} })
  t.equal(query.json().message, "querystring must NOT have additional property 'qq'")
  const odd = await app.inject({ method: 'POST', url: '/test/new', payload: { ['<script>'.repeat(20)]: 1 } })
  t.equal(odd.statusCode, 400)
  t.notMatch(odd.json().message, /script/, 'a made-up key is never echoed')
  t.match(odd.json().message, /additional property/)
})
