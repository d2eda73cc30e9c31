import { connect } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import t, { type Test } from 'tap'
import app from '../../app.js'
import { buildServer } from '../../serve.js'
import { buildServerOptions, SERVER_TIMEOUTS, type ServerTimeouts } from '../../server-options/index.js'
import { lineCollector, productionEnv, testConfig } from '../helper.js'
import { parseResponse, rawRequest, type RawResponse } from '../fixtures/raw-http.js'
import { securityHeaders } from '../fixtures/security-headers.js'

// Slow clients are cut off (docs/edge.md, "Slow clients"): the production server, with
// its deadlines scaled down so that a test does not wait 35 s. The mechanism is the
// same: Node's request and header deadlines, checked every connectionsCheckingInterval.

const FAST: Partial<ServerTimeouts> = { requestTimeout: 1500, headersTimeout: 1000, connectionsCheckingInterval: 200 }
// The latest a request may be cut off: its deadline plus one check interval, plus slack for a busy machine.
const LATEST = 1500 + 200 + 1500

async function listenWith (t: Test, timeouts: Partial<ServerTimeouts>, logs: object[] = []): Promise<{ server: FastifyInstance, port: number }> {
  const config = await testConfig({ ...await productionEnv(), LOG_LEVEL: 'info' })
  const server = Fastify(buildServerOptions(config, { timeouts, logStream: lineCollector(logs) }))
  await server.register(fp(app), { config })
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  return { server, port: (server.server.address() as { port: number }).port }
}

interface Dripped { response: RawResponse, closedAfter: number, bytesSent: number }

/** Sends `head` at once, then `drip` one byte every `everyMs` until the server closes the connection. */
function drip (port: number, head: string, drip: string, everyMs: number): Promise<Dripped> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const started = Date.now()
    let sent = 0
    const guard = setTimeout(() => { socket.destroy(); reject(new Error('the server never closed the connection')) }, 20_000)
    const timer = setInterval(() => {
      if (sent < drip.length && !socket.destroyed) socket.write(drip[sent++] ?? '')
    }, everyMs)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(timer)
      clearTimeout(guard)
      resolve({ response: parseResponse(Buffer.concat(chunks).toString('latin1')), closedAfter: Date.now() - started, bytesSent: sent })
    })
    socket.write(head)
  })
}

t.test('production deadlines: every request is cut off within 35 s, and the header count is not limited', async (t) => {
  t.ok(SERVER_TIMEOUTS.requestTimeout + SERVER_TIMEOUTS.connectionsCheckingInterval <= 35_000, 'requestTimeout + connectionsCheckingInterval ≤ 35 s')
  t.ok(SERVER_TIMEOUTS.headersTimeout <= SERVER_TIMEOUTS.requestTimeout, 'the headers have no longer than the whole request')
  t.ok(SERVER_TIMEOUTS.connectionsCheckingInterval > 0)
  const server = await buildServer(await testConfig(await productionEnv()))
  t.teardown(() => server.close())
  await server.ready()
  t.equal(server.server.requestTimeout, SERVER_TIMEOUTS.requestTimeout, 'the server the app runs on has these deadlines')
  t.equal(server.server.headersTimeout, SERVER_TIMEOUTS.headersTimeout)
  t.equal(server.server.maxHeadersCount, 0, 'every header field is read: none is silently dropped')
})

t.test('headers dripped in one byte at a time: 408 and the connection closed at the deadline', async (t) => {
  const { port } = await listenWith(t, FAST)
  const head = 'GET /health/live HTTP/1.1\r\nHost: x\r\n'
  const result = await drip(port, head, `X-Slow: ${'a'.repeat(1000)}\r\n\r\n`, 50)
  t.equal(result.response.status, 408)
  t.equal(JSON.parse(result.response.body).statusCode, 408, 'in the error shape')
  t.ok(result.closedAfter >= 1000 && result.closedAfter <= LATEST, `closed after ${result.closedAfter} ms, ${result.bytesSent} bytes dripped`)
  const normal = securityHeaders((await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).headers)
  t.same(securityHeaders(result.response.headers), normal, 'the 408 carries the security headers of a normal response')
})

t.test('a body dripped in one byte at a time: 408 at the request deadline, logged once as an abort, never as an error', async (t) => {
  const logs: object[] = []
  const { port } = await listenWith(t, FAST, logs)
  const head = 'POST /auth/login HTTP/1.1\r\nHost: x\r\nX-Request-ID: drip-1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n'
  const result = await drip(port, head, '{"email":"' + 'a'.repeat(99_000), 50)
  t.equal(result.response.status, 408)
  t.ok(result.closedAfter >= 1500 && result.closedAfter <= LATEST, `closed after ${result.closedAfter} ms, ${result.bytesSent} bytes dripped`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const lines = logs as Array<{ level: number, reqId?: string, msg: string }>
  t.same(lines.filter((l) => l.level >= 50), [], 'no error line')
  const mine = lines.filter((l) => l.reqId === 'drip-1')
  t.same(mine.map((l) => [l.level, l.msg]), [[30, 'request aborted by the client']], 'one info line: an abort')
})

t.test('a client that keeps sending keeps nothing open past the deadline, however many requests it pipelines', async (t) => {
  const { port } = await listenWith(t, FAST)
  // Complete requests on one connection are each served; a slow one among them is cut off.
  const fast = 'GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n'
  const result = await drip(port, fast + fast, 'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(1000), 50)
  t.match(result.response.raw, /^HTTP\/1\.1 200 /, 'the complete requests were answered')
  t.match(result.response.raw, /HTTP\/1\.1 408 /, 'the slow one was cut off')
  t.ok(result.closedAfter <= LATEST, `closed after ${result.closedAfter} ms`)
})
