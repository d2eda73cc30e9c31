import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import idempotencyPlugin from '../../plugins/app/idempotency.js'
import { build, clientToken, injectAs, loginAs } from '../helper.js'

// The route option behind safe retries (plugins/app/idempotency.ts), on test routes
// whose outcome each test controls; POST /notes itself is in test/routes/notes-idempotency.test.ts.

interface Controls {
  calls: number
  /** The answer of the next call: a status, or a promise the test resolves to one. */
  next: () => number | Promise<number>
}

function routes (controls: Controls) {
  return function register (app: FastifyInstance): void {
    app.post('/test/op', { config: { idempotency: true }, preParsing: app.authenticate }, async function op (request, reply) {
      controls.calls++
      const call = controls.calls
      const status = await controls.next()
      if (status >= 500) throw new Error('handler failed')
      return reply.code(status).header('location', `/test/op/${call}`).header('etag', `"${call}"`).header('x-other', 'not kept')
        .send({ call, principal: request.principal.kind, body: request.body })
    })
    app.post('/test/slow', { config: { idempotency: true, deadlineMs: 200 }, preParsing: app.authenticate }, async function slow (_request, reply) {
      controls.calls++
      await new Promise((resolve) => setTimeout(resolve, 400))
      return reply.code(201).send({ late: true })
    })
  }
}

async function setup (t: Parameters<typeof build>[0]) {
  const controls: Controls = { calls: 0, next: () => 201 }
  const app = await build(t, { routes: routes(controls) })
  const user = await loginAs(app)
  const post = (key: string | undefined, payload: unknown = { a: 1 }, token = user.accessToken, url = '/test/op') =>
    injectAs(app, token, {
      method: 'POST',
      url,
      payload: payload as object,
      headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) }
    })
  return { app, user, controls, post }
}

t.test('the first answer is replayed for the same key and body, with Idempotent-Replayed, and the handler runs once', async (t) => {
  const { controls, post } = await setup(t)
  const first = await post('k-1')
  t.equal(first.statusCode, 201)
  t.equal(first.headers['idempotent-replayed'], undefined, 'the original answer is not marked')
  const again = await post('k-1')
  t.equal(again.statusCode, 201)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.body, first.body, 'the same body, byte for byte')
  t.equal(again.headers.location, first.headers.location)
  t.equal(again.headers.etag, first.headers.etag)
  t.match(again.headers['content-type'], /^application\/json/)
  t.equal(again.headers['x-other'], undefined, 'only content-type, Location and ETag are part of the kept answer')
  t.ok(again.headers['x-request-id'] && again.headers['x-request-id'] !== first.headers['x-request-id'], 'each answer keeps its own request id')
  t.equal(controls.calls, 1)
  t.equal((await post('"k-1"')).headers['idempotent-replayed'], 'true', '"k-1" (a quoted Structured Field String) is the key k-1')
  t.equal(controls.calls, 1)
})

t.test('the same key with another body is 422 IDEMPOTENCY_KEY_REUSED; key order and whitespace are not another body', async (t) => {
  const { controls, post } = await setup(t)
  t.equal((await post('k-2', '{"a":1,"b":[1,2]}')).statusCode, 201)
  const reordered = await post('k-2', ' {\n"b" : [1, 2],  "a":1 }')
  t.equal(reordered.headers['idempotent-replayed'], 'true', 'reordered keys and whitespace are the same body')
  const other = await post('k-2', '{"a":2,"b":[1,2]}')
  t.equal(other.statusCode, 422)
  t.equal(other.json().code, 'IDEMPOTENCY_KEY_REUSED')
  t.equal(other.json().error, 'Unprocessable Entity')
  t.equal((await post('k-2', '{"a":1,"b":[2,1]}')).statusCode, 422, 'array order is part of the body')
  t.equal(controls.calls, 1)
})

t.test('a malformed key is 400 VALIDATION_ERROR and runs nothing', async (t) => {
  const { controls, post } = await setup(t)
  for (const key of ['', ' ', 'two words', 'x'.repeat(256), '"unterminated', '"bad\\escape"', 'caf\u00e9']) {
    const res = await post(key)
    t.equal(res.statusCode, 400, JSON.stringify(key))
    t.equal(res.json().code, 'VALIDATION_ERROR')
  }
  t.equal(controls.calls, 0)
  t.equal((await post('x'.repeat(255))).statusCode, 201, '255 characters is a key')
  t.equal((await post(undefined)).statusCode, 201, 'no key: processed as usual')
  t.equal((await post(undefined)).headers['idempotent-replayed'], undefined, 'and every time')
  t.equal(controls.calls, 3)
})

t.test('two Idempotency-Key headers are refused', async (t) => {
  const { app, user, controls } = await setup(t)
  // Over a real connection: light-my-request cannot send a header twice.
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const res = await fetch(`http://127.0.0.1:${port}/test/op`, {
    method: 'POST',
    headers: [['authorization', `Bearer ${user.accessToken}`], ['content-type', 'application/json'], ['idempotency-key', 'a'], ['idempotency-key', 'b']],
    body: '{}'
  })
  t.equal(res.status, 400)
  t.equal((await res.json() as { code: string }).code, 'VALIDATION_ERROR')
  t.equal(controls.calls, 0)
})

t.test('keys belong to the principal: another user or a service client with the same key is another request', async (t) => {
  const { app, controls, post } = await setup(t)
  const other = await loginAs(app)
  const client = await clientToken(app, { scopes: ['notes:read'] })
  const mine = await post('shared-key', { a: 1 })
  const theirs = await post('shared-key', { a: 2 }, other.accessToken)
  const clients = await post('shared-key', { a: 3 }, client)
  t.same([mine.statusCode, theirs.statusCode, clients.statusCode], [201, 201, 201], 'none of them is a reuse')
  t.same([mine.json().call, theirs.json().call, clients.json().call], [1, 2, 3])
  t.equal(clients.json().principal, 'client')
  t.equal((await post('shared-key', { a: 2 }, other.accessToken)).json().call, 2, 'each replays its own')
  t.equal(controls.calls, 3)
})

t.test('5xx, 401, 403, 409 and 429 are not kept: the retry is processed afresh', async (t) => {
  const { controls, post } = await setup(t)
  for (const status of [500, 401, 403, 409, 429]) {
    const before = controls.calls
    controls.next = () => status
    t.equal((await post(`k-${status}`)).statusCode, status)
    controls.next = () => 201
    const retry = await post(`k-${status}`)
    t.equal(retry.statusCode, 201, `after a ${status}`)
    t.equal(retry.headers['idempotent-replayed'], undefined)
    t.equal(controls.calls, before + 2)
  }
})

t.test('other answers are kept, errors too: a 404 or 400 of the handler is replayed', async (t) => {
  const { controls, post } = await setup(t)
  for (const status of [404, 400, 200]) {
    controls.next = () => status
    const first = await post(`kept-${status}`)
    controls.next = () => 201
    const retry = await post(`kept-${status}`)
    t.equal(retry.statusCode, status)
    t.equal(retry.headers['idempotent-replayed'], 'true')
    t.equal(retry.body, first.body)
  }
  t.equal(controls.calls, 3)
})

t.test('while the first is processed: the same body is 409 IDEMPOTENCY_KEY_IN_USE with Retry-After, another body 422', async (t) => {
  const { controls, post } = await setup(t)
  let finish: (status: number) => void = () => {}
  controls.next = () => new Promise<number>((resolve) => { finish = resolve })
  const first = post('in-flight', { a: 1 })
  while (controls.calls === 0) await new Promise((resolve) => setTimeout(resolve, 5))

  const same = await post('in-flight', { a: 1 })
  t.equal(same.statusCode, 409)
  t.equal(same.json().code, 'IDEMPOTENCY_KEY_IN_USE')
  t.equal(same.headers['retry-after'], '1')
  const other = await post('in-flight', { a: 2 })
  t.equal(other.statusCode, 422, 'another body is refused even before the first is done')
  t.equal(other.json().code, 'IDEMPOTENCY_KEY_REUSED')

  finish(201)
  t.equal((await first).statusCode, 201)
  controls.next = () => 201
  t.equal((await post('in-flight', { a: 1 })).headers['idempotent-replayed'], 'true')
  t.equal(controls.calls, 1)
})

t.test('a request answered 503 by its deadline keeps its key in use: the handler may still commit', async (t) => {
  const { controls, post } = await setup(t)
  const timedOut = await post('slow', { a: 1 }, undefined, '/test/slow')
  t.equal(timedOut.statusCode, 503)
  t.equal(timedOut.json().code, 'SERVICE_UNAVAILABLE')
  t.equal(timedOut.headers['retry-after'], '1')
  const retry = await post('slow', { a: 1 }, undefined, '/test/slow')
  t.equal(retry.statusCode, 409, 'not processed a second time while the first may still be running')
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(controls.calls, 1)
})

t.test('a key left processing by a replica that died is taken over once its lease has run out; an expired key starts afresh', async (t) => {
  const { app, user, controls, post } = await setup(t)
  t.equal((await post('crashed')).statusCode, 201)
  const principal = `user:${user.userId}`
  // What a replica killed mid-request leaves behind.
  await app.pg.query("UPDATE idempotency_keys SET state = 'processing', status_code = NULL, response_body = NULL, lock_token = gen_random_uuid(), locked_until = now() + interval '1 minute' WHERE principal = $1 AND key = 'crashed'", [principal])
  t.equal((await post('crashed')).statusCode, 409, 'in use while the lease runs')
  t.equal((await post('crashed', { a: 9 })).statusCode, 422, 'another body is still another request')
  await app.pg.query("UPDATE idempotency_keys SET locked_until = now() - interval '1 second' WHERE principal = $1 AND key = 'crashed'", [principal])
  t.equal((await post('crashed', { a: 9 })).statusCode, 422, 'a lapsed lease is not handed to another body')
  const takenOver = await post('crashed')
  t.equal(takenOver.statusCode, 201)
  t.equal(takenOver.headers['idempotent-replayed'], undefined, 'processed again')
  t.equal((await post('crashed')).headers['idempotent-replayed'], 'true', 'and kept')

  await app.pg.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE principal = $1 AND key = 'crashed'", [principal])
  const afresh = await post('crashed', { a: 9 })
  t.equal(afresh.statusCode, 201, 'after 24 hours the key is free, for any body')
  t.equal(controls.calls, 3)
})

t.test('expired keys are cleaned up, in batches', async (t) => {
  const { app, user, post } = await setup(t)
  for (const key of ['old-1', 'old-2', 'old-3', 'fresh']) await post(key)
  await app.pg.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 minute' WHERE key LIKE 'old-%'")
  t.equal(await app.repos.idempotency.prune(2), 2, 'a batch is bounded')
  t.equal(await app.repos.idempotency.prune(), 1)
  const { rows } = await app.pg.query<{ key: string }>('SELECT key FROM idempotency_keys WHERE principal = $1 ORDER BY key', [`user:${user.userId}`])
  t.same(rows.map((r) => r.key), ['fresh'])
})

t.test('the option is for POST and PATCH routes: a GET route with it refuses to start', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  // The plugin alone: its dependencies are checked by name, and fakes stand in for them.
  await app.register(fp(async (fastify) => { fastify.decorate('repos', { idempotency: {} } as never) }, { name: 'repositories' }))
  await app.register(fp(async () => {}, { name: 'authenticate' }))
  await app.register(fp(async () => {}, { name: 'deadline' }))
  await app.register(idempotencyPlugin)
  await t.rejects(async () => {
    await app.register(async (instance) => {
      instance.get('/x', { config: { idempotency: true } }, async () => ({}))
    })
  }, /config.idempotency is for POST and PATCH routes, not GET \/x/)
})
