import { connect } from 'node:net'
import t from 'tap'
import pg from 'pg'
import { isDatabaseUnavailable } from '../../lib/db-errors.js'
import { build, productionEnv } from '../helper.js'

// A client that hangs up is not an outage (docs/edge.md, "Clients that hang up").

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Line { level: number, reqId?: string, msg: string }

/** Content-Length: 100, then 4 bytes, then the socket closed: the finding's reproduction. */
function hangUpMidBody (port: number, requestId: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.on('close', () => resolve())
    // Read whatever comes back (the parser's 400), or 'close' never fires.
    socket.resume()
    socket.write(`POST /auth/login HTTP/1.1\r\nHost: x\r\nX-Request-ID: ${requestId}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"em`)
    setTimeout(() => socket.end(), 50)
  })
}

t.test('a request aborted mid-body is one info line, never an error, a 503 or a database failure', async (t) => {
  const logs: Line[] = []
  const app = await build(t, { env: await productionEnv(), logs })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }

  for (let i = 0; i < 5; i++) await hangUpMidBody(port, `hang-up-${i}`)
  await sleep(300)

  t.same(logs.filter((l) => l.level >= 40).map((l) => l.msg), [], 'nothing at warn or error')
  for (let i = 0; i < 5; i++) {
    const lines = logs.filter((l) => l.reqId === `hang-up-${i}`)
    t.same(lines.map((l) => [l.level, l.msg]), [[30, 'request aborted by the client']], `request ${i}: logged once, at info, as an abort`)
  }
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.notMatch(metrics, /status_code="503"/, 'no 503 counted')
  t.notMatch(metrics, /status_code="5\d\d"/, 'no 5xx at all')
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 200, 'and the service is ready')
})

t.test('isDatabaseUnavailable: a socket error of the driver is an outage; a request aborted by its client is not', async (t) => {
  // What Node gives a request body stream when its client hangs up.
  const aborted = Object.assign(new Error('aborted'), { code: 'ECONNRESET' })
  t.notOk(isDatabaseUnavailable(aborted), 'ECONNRESET without a system call: an HTTP client hanging up')
  t.ok(isDatabaseUnavailable(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read', errno: -104 })), 'read ECONNRESET on a socket')
  const client = new pg.Client({ connectionString: 'postgresql://u:p@127.0.0.1:1/none', connectionTimeoutMillis: 1000 })
  const refused = await client.connect().then(() => undefined, (err: unknown) => err)
  t.ok(isDatabaseUnavailable(refused), 'a refused connection to PostgreSQL')
})
