import { request as httpRequest } from 'node:http'
import t from 'tap'
import Fastify from 'fastify'
import { REQUEST_DEADLINE_MS } from '../../plugins/app/deadline.js'
import { build } from '../helper.js'

// Every request answers within its deadline (plugins/app/deadline.ts): 503
// SERVICE_UNAVAILABLE with Retry-After rather than a wait past 5 s.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function slowApp (t: Parameters<typeof build>[0], logs?: object[]) {
  const finished: string[] = []
  const app = await build(t, {
    ...(logs ? { logs } : {}),
    routes (app) {
      app.get('/test/slow', { config: { deadlineMs: 200 } }, async () => { await sleep(600); finished.push('get'); return { late: true } })
      app.post('/test/slow', { config: { deadlineMs: 200 } }, async (_request, reply) => { await sleep(600); finished.push('post'); return reply.code(201).send({ late: true }) })
      app.get('/test/quick', async () => { await sleep(50); return { quick: true } })
      app.post('/test/upload', { config: { deadlineMs: 200 } }, async (request, reply) => reply.code(201).send({ got: request.body }))
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, base: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, finished }
}

t.test('the default deadline leaves room under the 5 s the contract allows', async (t) => {
  t.ok(REQUEST_DEADLINE_MS >= 1000 && REQUEST_DEADLINE_MS <= 4500, `${REQUEST_DEADLINE_MS} ms`)
})

t.test('a request past its deadline gets 503 SERVICE_UNAVAILABLE with Retry-After, a POST with a body too', async (t) => {
  const logs: object[] = []
  const { base, finished } = await slowApp(t, logs)
  for (const init of [{ method: 'GET' }, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' }]) {
    const started = Date.now()
    const res = await fetch(`${base}/test/slow`, { ...init, headers: { 'x-request-id': `late-${init.method}`, ...init.headers } })
    const waited = Date.now() - started
    t.equal(res.status, 503, init.method)
    t.same(await res.json(), { statusCode: 503, error: 'Service Unavailable', code: 'SERVICE_UNAVAILABLE', message: 'The service could not answer in time; retry later', requestId: `late-${init.method}` })
    t.equal(res.headers.get('retry-after'), '1')
    t.ok(waited < 500, `${init.method} answered after ${waited} ms (deadline 200 ms)`)
  }
  await sleep(700)
  t.same(finished.sort(), ['get', 'post'], 'the handlers ran to their end; their late answers were dropped')
  t.ok((logs as Array<{ msg?: string }>).some((l) => l.msg === 'no answer within the deadline: 503'))
  const quick = await fetch(`${base}/test/quick`)
  t.equal(quick.status, 200, 'the server is fine afterwards, and a quick route is untouched')
})

t.test('the deadline counts from when the body has arrived: a slow upload is not cut short', async (t) => {
  const { app } = await slowApp(t)
  const port = (app.server.address() as { port: number }).port
  const answer = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/test/upload', headers: { 'content-type': 'application/json', 'content-length': '9' } }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.write('{"a":')
    // Half the body now, the rest after twice the route's 200 ms deadline.
    setTimeout(() => req.end('123}'), 450)
  })
  t.same(answer, { status: 201, body: '{"got":{"a":123}}' })
})

// Pinned so that the fix is noticed: when this fails, Fastify's handlerTimeout can
// replace plugins/app/deadline.ts.
t.test('Fastify\'s own handlerTimeout still misses a request with a body (fastify/fastify#6725)', async (t) => {
  const app = Fastify({ handlerTimeout: 150 })
  t.teardown(() => app.close())
  app.post('/x', async () => { await sleep(500); return { late: true } })
  app.get('/x', async () => { await sleep(500); return { late: true } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  t.equal((await fetch(`${base}/x`)).status, 503, 'it fires for a GET')
  const post = await fetch(`${base}/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(post.status, 200, 'but not for a POST whose body was read: the request waited the full 500 ms')
})
