import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { testDatabaseUrl } from '../helper.js'
import { spawnServer, TEST_SERVER } from '../fixtures/spawn.js'

// Graceful shutdown (docs/operations.md), on the real entry point's code (serve.ts) in its own
// process: test/fixtures/server-with-test-routes.mjs adds GET /test/slow?ms=N.

interface Reply { status: number, headers: IncomingHttpHeaders, body: string }

function get (port: number, path: string, agent?: Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function start (t: Test, env: Record<string, string> = {}) {
  const server = spawnServer(t, {
    ENVIRONMENT: 'test',
    DATABASE_URL: await testDatabaseUrl(),
    PORT: '0',
    LOG_LEVEL: 'info',
    ...env
  }, TEST_SERVER)
  const port = await server.port()
  return { server, port }
}

t.test('a process that exits in the turn a response finished still writes that request\'s completion line', async (t) => {
  const { server, port } = await start(t)
  const res = await new Promise<Reply>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/test/exit', agent: false, headers: { 'x-request-id': 'exit-1' } }, (r) => {
      r.resume()
      r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: '' }))
      // The server may close the socket as it exits.
      r.on('error', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: '' }))
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(res.status, 200)
  const { code } = await server.exited
  t.equal(code, 3, 'it exited from the finish listener')
  const line = server.lines.find((l) => l.reqId === 'exit-1' && l.msg === 'request completed')
  t.ok(line, 'the completion line was written at exit')
  t.equal(line?.route, '/test/exit')
  t.equal(line?.statusCode, 200)
})

t.test('SIGTERM with a request in flight on a keep-alive connection: it completes with Connection: close, readiness turns 503 at once, exit 0', async (t) => {
  const { server, port } = await start(t, { SHUTDOWN_DRAIN_DELAY: '500' })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  // Open the keep-alive connection with a first request, then reuse it.
  const first = await get(port, '/health/live', agent)
  t.equal(first.headers.connection, 'keep-alive')

  const slow = get(port, '/test/slow?ms=1500', agent)
  await server.waitForLine((l) => l.msg === 'slow request started')
  const signalled = Date.now()
  server.child.kill('SIGTERM')
  await server.waitForLine((l) => l.msg === 'shutdown started')

  const ready = await get(port, '/health/ready')
  t.equal(ready.status, 503, 'readiness 503 from the signal on')
  t.same(JSON.parse(ready.body), { status: 'shutting_down' })
  const live = await get(port, '/health/live')
  t.equal(live.status, 200, 'still serving during the drain delay')

  await sleep(700 - (Date.now() - signalled))
  await t.rejects(get(port, '/health/live'), { code: 'ECONNREFUSED' }, 'new connections refused after the drain delay')

  const res = await slow
  t.equal(res.status, 200, 'the in-flight request completes')
  t.same(JSON.parse(res.body), { slept: 1500 })
  t.equal(res.headers.connection, 'close', 'and closes its keep-alive connection')

  const { code, at } = await server.exited
  const elapsed = at - signalled
  t.equal(code, 0, 'exit code 0')
  t.ok(elapsed < 5000, `exited ${elapsed} ms after SIGTERM`)
  t.comment(`SIGTERM to exit with a 1.5 s request in flight and a 0.5 s drain: ${elapsed} ms`)
  t.ok(server.lines.some((l) => l.msg === 'shutdown complete'))
  t.notOk(server.lines.some((l) => l.level as number >= 50), 'no error logged')
})

t.test('an idle keep-alive connection does not hold the shutdown', async (t) => {
  const { server, port } = await start(t)
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 })
  t.teardown(() => agent.destroy())
  t.equal((await get(port, '/health/ready', agent)).status, 200)
  const signalled = Date.now()
  server.child.kill('SIGTERM')
  const { code, at } = await server.exited
  t.equal(code, 0)
  t.ok(at - signalled < 2000, `exited ${at - signalled} ms after SIGTERM`)
  t.comment(`SIGTERM to exit with an idle keep-alive connection: ${at - signalled} ms`)
})

t.test('SIGINT shuts down the same way', async (t) => {
  const { server, port } = await start(t)
  const slow = get(port, '/test/slow?ms=500')
  await server.waitForLine((l) => l.msg === 'slow request started')
  server.child.kill('SIGINT')
  t.equal((await slow).status, 200)
  t.equal((await server.exited).code, 0)
})

t.test('a second signal forces the exit', async (t) => {
  const { server, port } = await start(t)
  const slow = get(port, '/test/slow?ms=8000').catch((err: Error) => err)
  await server.waitForLine((l) => l.msg === 'slow request started')
  server.child.kill('SIGTERM')
  await server.waitForLine((l) => l.msg === 'shutdown started')
  await sleep(200)
  const second = Date.now()
  server.child.kill('SIGTERM')
  const { code, at } = await server.exited
  t.not(code, 0, 'a forced exit is not a clean one')
  t.ok(at - second < 1000, `exited ${at - second} ms after the second signal`)
  t.type(await slow, Error, 'the in-flight request was cut')
})

t.test('the shutdown deadline forces the exit', async (t) => {
  const { server, port } = await start(t, { SHUTDOWN_TIMEOUT: '1000' })
  const slow = get(port, '/test/slow?ms=8000').catch((err: Error) => err)
  await server.waitForLine((l) => l.msg === 'slow request started')
  const signalled = Date.now()
  server.child.kill('SIGTERM')
  const { code, at } = await server.exited
  const elapsed = at - signalled
  t.equal(code, 1)
  t.ok(elapsed >= 900 && elapsed < 3000, `exited ${elapsed} ms after SIGTERM (deadline 1000 ms)`)
  t.ok(server.lines.some((l) => /killed by timeout/.test(String(l.msg))), 'the forced exit is logged as JSON')
  await slow
})
