import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { GENEROUS_LIMITS, productionEnv, testDatabaseUrl } from '../helper.js'
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../fixtures/otlp-receiver.js'
import { freePort, redisServerMissing, startRedis } from '../fixtures/redis-server.js'
import { ROOT, TEST_SERVER, spawnServer, type Spawned } from '../fixtures/spawn.js'
import { collectLines } from '../fixtures/json-lines.js'

// Tracing (SPEC §6.4, docs/operations.md "Tracing") against a real OTLP/HTTP
// receiver, for each way the service starts: the container's command (read from the
// Dockerfile), `node --import dist/telemetry.js`, fastify-cli and, in
// tracing-dev.test.ts, `npm run dev`. Spans arrive within the batch delay (100 ms here).

t.setTimeout(240_000)

const TELEMETRY = pathToFileURL(join(ROOT, 'dist', 'telemetry.js')).href
const PARENT_TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT_SPAN = 'b7ad6b7169203331'
const REDIS_MISSING = redisServerMissing()

/** The container's command line, from the Dockerfile's CMD (exec form). */
function containerCommand (): string[] {
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1]
  if (cmd === undefined) throw new Error('no exec-form CMD in the Dockerfile')
  return JSON.parse(cmd) as string[]
}

async function baseEnv (t: Test, receiver: OtlpReceiver, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    ...await productionEnv({ DATABASE_URL: await testDatabaseUrl() }),
    ...GENEROUS_LIMITS,
    HOST: '127.0.0.1',
    PORT: '0',
    SHUTDOWN_DRAIN_DELAY: '0',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    // A loaded machine may take seconds to answer an export; the default 10 s
    // timeout then drops a whole batch, which these tests would read as a span not sent.
    OTEL_EXPORTER_OTLP_TIMEOUT: '30000',
    ...extra
  }
  if (!REDIS_MISSING) {
    const port = await freePort()
    await startRedis(t, port)
    env.REDIS_URL = `redis://127.0.0.1:${port}`
  }
  return env
}

/** The spans of one trace, and whether `span` descends from `ancestor` in it. */
function descendsFrom (spans: ReceivedSpan[], span: ReceivedSpan, ancestor: ReceivedSpan): boolean {
  const byId = new Map(spans.filter((s) => s.traceId === span.traceId).map((s) => [s.spanId, s]))
  let current: ReceivedSpan | undefined = span
  for (let depth = 0; current !== undefined && depth < 50; depth++) {
    if (current.parentSpanId === ancestor.spanId) return true
    current = byId.get(current.parentSpanId)
  }
  return false
}

const serverSpan = (name: string, traceId?: string) => (s: ReceivedSpan) => s.kind === 2 && s.name === name && (traceId === undefined || s.traceId === traceId)

function reqIdOf (res: Response): string {
  return res.headers.get('x-request-id') ?? ''
}

t.test('the container command: a traceparent is continued, queries and Redis commands are child spans, log lines carry the ids', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const [program, ...args] = containerCommand()
  t.equal(program, 'node', 'the image runs node directly')
  // The same command line, run from the checkout: Node's flags (if any) through NODE_OPTIONS.
  const script = join(ROOT, args.at(-1)!)
  const flags = args.slice(0, -1).join(' ')
  const server = spawnServer(t, { ...await baseEnv(t, receiver), ...(flags !== '' && { NODE_OPTIONS: flags }) }, script)
  const base = `http://127.0.0.1:${await server.port(60_000)}`

  const res = await fetch(`${base}/health/ready`, { headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01`, tracestate: 'vendor=value' } })
  t.equal(res.status, 200)
  const spans = await receiver.waitForSpans((all) => all.some(serverSpan('GET /health/ready', PARENT_TRACE)) &&
    all.some((s) => s.traceId === PARENT_TRACE && s.attributes['db.system.name'] === 'postgresql') &&
    (REDIS_MISSING !== false || all.some((s) => s.traceId === PARENT_TRACE && s.attributes['db.system.name'] === 'redis')))
  const request = spans.find(serverSpan('GET /health/ready', PARENT_TRACE))!
  t.equal(request.parentSpanId, PARENT_SPAN, 'the server span is the child of the incoming traceparent')
  t.equal(request.attributes['http.route'], '/health/ready')
  t.equal(request.attributes['http.response.status_code'], 200)
  t.equal(request.serviceName, 'secure-fastify-service', 'service.name defaults to the package name')
  const query = spans.find((s) => s.traceId === PARENT_TRACE && s.attributes['db.system.name'] === 'postgresql')!
  t.ok(descendsFrom(spans, query, request), `the query span (${query.name}) is under the request span`)
  t.equal(query.kind, 3, 'a client span')
  if (REDIS_MISSING === false) {
    const command = spans.find((s) => s.traceId === PARENT_TRACE && s.attributes['db.system.name'] === 'redis')!
    t.ok(descendsFrom(spans, command, request), `the Redis span (${command.name}) is under the request span, though ioredis is imported as an ES module`)
  } else {
    t.comment(`Redis spans not checked: ${REDIS_MISSING}`)
  }

  const line = await server.waitForLine((l) => l.reqId === reqIdOf(res) && l.msg === 'request completed')
  t.equal(line.trace_id, PARENT_TRACE, 'the completion line carries the trace id')
  t.equal(line.span_id, request.spanId, 'and the id of the request span')

  // A malformed traceparent is ignored: a new trace, never an error.
  for (const bad of ['garbage', `00-${'0'.repeat(32)}-${PARENT_SPAN}-01`, `00-${PARENT_TRACE}-${PARENT_SPAN}`, `ff-${PARENT_TRACE}-${PARENT_SPAN}-01`]) {
    const r = await fetch(`${base}/health/live`, { headers: { traceparent: bad } })
    t.equal(r.status, 200, `traceparent ${bad} is not an error`)
    const l = await server.waitForLine((x) => x.reqId === reqIdOf(r) && x.msg === 'request completed')
    const all = await receiver.waitForSpans((s) => s.some((x) => x.spanId === l.span_id))
    const span = all.find((x) => x.spanId === l.span_id)!
    t.equal(span.name, 'GET /health/live')
    t.equal(span.parentSpanId, '', 'a root span')
    t.not(span.traceId, PARENT_TRACE, 'in a new trace')
    t.match(span.traceId, /^[0-9a-f]{32}$/)
  }

  // An unknown URL has no route: the span is named by the method alone.
  const missing = await fetch(`${base}/no/such/route`)
  t.equal(missing.status, 404)
  const l404 = await server.waitForLine((x) => x.reqId === reqIdOf(missing) && x.msg === 'request completed')
  const s404 = (await receiver.waitForSpans((s) => s.some((x) => x.spanId === l404.span_id))).find((x) => x.spanId === l404.span_id)!
  t.equal(s404.name, 'GET')
})

t.test('node --import dist/telemetry.js: a 500 is an error span; credentials, tokens and SQL values are never recorded', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const env = await baseEnv(t, receiver, { NODE_OPTIONS: `--import=${TELEMETRY}`, JWT_TOKEN_LOCATION: 'headers,cookies' })
  const server = spawnServer(t, env, TEST_SERVER)
  const base = `http://127.0.0.1:${await server.port(60_000)}`

  const fail = await fetch(`${base}/test/fail`)
  t.equal(fail.status, 500)
  t.equal((await fail.json() as { code: string }).code, 'INTERNAL_ERROR', 'in the error shape')
  const failSpan = (await receiver.waitForSpans((s) => s.some(serverSpan('GET /test/fail')))).find(serverSpan('GET /test/fail'))!
  t.equal(failSpan.status, 2, 'status ERROR on a 500')
  t.equal(failSpan.attributes['http.response.status_code'], 500)

  // Everything secret that a request may carry, each value unique to this run.
  const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`
  const email = `${secret('user')}@example.com`
  const password = secret('password')
  const json = { 'content-type': 'application/json' }
  const reg = await fetch(`${base}/auth/register`, { method: 'POST', headers: json, body: JSON.stringify({ email, password }) })
  t.equal(reg.status, 201, 'registered')
  const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: json, body: JSON.stringify({ email, password }) })
  t.equal(login.status, 200, 'logged in')
  const tokens = await login.json() as { access_token: string, refresh_token?: string }
  const cookies = login.headers.getSetCookie().map((c) => c.split(';')[0]!)
  const cookieValues = cookies.map((c) => c.slice(c.indexOf('=') + 1)).filter((v) => v.length > 8)
  t.ok(cookieValues.length > 0, 'the login set cookies')
  const csrf = cookies.find((c) => c.startsWith('csrf_access_token='))?.split('=')[1] ?? secret('csrf')

  const me = await fetch(`${base}/auth/me`, {
    headers: { authorization: `Bearer ${tokens.access_token}`, cookie: cookies.join('; '), 'x-csrf-token': csrf }
  })
  t.equal(me.status, 200, 'a bearer token, cookies and a CSRF header')
  const forged = `${tokens.access_token.slice(0, -8)}${secret('x').slice(0, 8)}`
  const refused = await fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${forged}` } })
  t.equal(refused.status, 401, 'a forged token is refused')
  const inQuery = secret('query-token')
  const queried = await fetch(`${base}/health/live?token=${inQuery}`)
  await queried.arrayBuffer()
  const title = secret('title')
  const body = secret('body')
  const note = await fetch(`${base}/notes`, {
    method: 'POST',
    headers: { ...json, authorization: `Bearer ${tokens.access_token}`, cookie: cookies.join('; '), 'x-csrf-token': csrf },
    body: JSON.stringify({ title, body })
  })
  t.equal(note.status, 201, 'a note inserted')

  const created = spawnSync(process.execPath, [join(ROOT, 'dist', 'scripts', 'clients.js'), 'create', '--name', secret('client'), '--scopes', 'notes:read'], {
    env: { PATH: process.env.PATH ?? '', ...env, NODE_OPTIONS: '' }, encoding: 'utf8'
  })
  t.equal(created.status, 0, `a service client created ${created.stderr}`)
  const client = JSON.parse(created.stdout) as { client_id: string, client_secret: string }
  const form = { 'content-type': 'application/x-www-form-urlencoded' }
  const basic = Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')
  const viaBasic = await fetch(`${base}/auth/token`, { method: 'POST', headers: { ...form, authorization: `Basic ${basic}` }, body: 'grant_type=client_credentials' })
  t.equal(viaBasic.status, 200, 'a client token with client_secret_basic')
  const clientToken = (await viaBasic.json() as { access_token: string }).access_token
  const viaPost = await fetch(`${base}/auth/token`, {
    method: 'POST', headers: form, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret }).toString()
  })
  t.equal(viaPost.status, 200, 'a client token with client_secret_post')

  await receiver.waitForSpans((s) => ['POST /auth/login', 'GET /auth/me', 'POST /notes', 'GET /health/live'].every((n) => s.some(serverSpan(n))) &&
    s.filter(serverSpan('POST /auth/token')).length === 2)
  const spans = receiver.spans()
  const insert = spans.find((s) => typeof s.attributes['db.query.text'] === 'string' && /INSERT INTO notes/.test(s.attributes['db.query.text'] as string))
  t.ok(insert, 'the note insert was traced')
  t.match(insert?.attributes['db.query.text'], /\$1/, 'its statement keeps its placeholders')
  t.ok(spans.filter((s) => s.kind === 2).every((s) => !String(s.attributes['url.path']).includes('?')), 'no query string in url.path')

  // What must never leave the service, searched for in every byte the receiver got.
  const received = receiver.bodies.map((b) => b.body.toString('utf8')).join('\n')
  const forbidden: Record<string, string> = {
    password,
    email,
    'access token': tokens.access_token,
    'client secret': client.client_secret,
    'Basic credentials': basic,
    'client access token': clientToken,
    'note title (a SQL parameter)': title,
    'note body (a SQL parameter)': body,
    'CSRF token': csrf,
    'token in a query string': inQuery,
    'forged token': forged,
    ...(tokens.refresh_token ? { 'refresh token': tokens.refresh_token } : {}),
    ...Object.fromEntries(cookieValues.map((v, i) => [`cookie value ${i}`, v]))
  }
  t.ok(received.length > 1000, `${receiver.bodies.length} exports received`)
  for (const [what, value] of Object.entries(forbidden)) t.notOk(received.includes(value), `no ${what} in any span`)
  t.notOk(received.includes('exception.stacktrace'), 'no exception events (stack traces)')
  for (const header of ['authorization', 'cookie', 'x-csrf-token']) {
    t.notOk(spans.some((s) => Object.keys(s.attributes).some((k) => k.toLowerCase().includes(header))), `no ${header} attribute`)
  }
})

t.test('a collector that is slow, then gone, while 1,000 requests are served: no request fails, errors are logged at most every 5 s', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const env = await baseEnv(t, receiver, { OTEL_EXPORTER_OTLP_TIMEOUT: '500' })
  const server = spawnServer(t, env, join(ROOT, 'dist', 'server.js'))
  const base = `http://127.0.0.1:${await server.port(60_000)}`
  const failures: string[] = []
  async function serve (count: number): Promise<number> {
    const started = Date.now()
    let next = 0
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (next < count) {
        next++
        try {
          const res = await fetch(`${base}/health/ready`)
          await res.arrayBuffer()
          if (res.status !== 200) failures.push(`status ${res.status}`)
        } catch (err) {
          failures.push(String(err))
        }
      }
    }))
    return Date.now() - started
  }
  const warm = await serve(100)
  receiver.setDelay(5000)
  const slow = await serve(500)
  await receiver.close()
  const gone = await serve(500)
  t.same(failures, [], 'every request answered 200')
  t.comment(`100 requests with the collector answering: ${warm} ms; 500 while it answered after 5 s: ${slow} ms; 500 with it gone: ${gone} ms`)

  // Let a few export attempts fail, then look at what was logged about them.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const errors = server.stderr().split('\n').filter((l) => l.includes('"name":"tracing"')).map((l) => JSON.parse(l) as { time: number, level: number })
  t.ok(errors.length >= 1, `the failed exports were logged (${errors.length} lines)`)
  for (let i = 1; i < errors.length; i++) t.ok(errors[i]!.time - errors[i - 1]!.time >= 5000, 'at most one line per 5 s')
  t.ok(errors.every((e) => e.level === 50), 'at error level')
})

t.test('fastify start --options under node --import dist/telemetry.js exports over the default protocol (http/protobuf)', async (t) => {
  const receiver = await startOtlpReceiver(t)
  // fastify start is the development path (production refuses it: docs/operations.md).
  const env: Record<string, string> = { ...await baseEnv(t, receiver), ENVIRONMENT: 'development' }
  delete env.OTEL_EXPORTER_OTLP_PROTOCOL
  const child = spawn(process.execPath, ['--import', TELEMETRY, join(ROOT, 'node_modules', 'fastify-cli', 'cli.js'), 'start', '--options', '-a', '127.0.0.1', '-p', '0', 'dist/app.js'], {
    cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const { text } = collectLines(child.stdout)
  let port: string | undefined
  const deadline = Date.now() + 60_000
  while (port === undefined && Date.now() < deadline) {
    port = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(text())?.[1]
    if (port === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(port, 'listening')
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` } })
  t.equal(res.status, 200)
  const traceBytes = Buffer.from(PARENT_TRACE, 'hex')
  const deadline2 = Date.now() + 15_000
  const all = () => Buffer.concat(receiver.bodies.map((b) => b.body))
  const has = (s: string | Buffer) => all().includes(s)
  const complete = () => has(traceBytes) && has('GET /health/ready') && has('pg.query') && (REDIS_MISSING !== false || has('ping'))
  while (Date.now() < deadline2 && !complete()) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(receiver.bodies.length > 0 && receiver.bodies.every((b) => b.contentType.startsWith('application/x-protobuf')), 'protobuf exports')
  t.ok(has(traceBytes), 'the trace id of the traceparent')
  t.ok(has('GET /health/ready'), 'the server span')
  t.ok(has('pg.query'), 'a PostgreSQL span')
  if (REDIS_MISSING === false) t.ok(has('ping'), 'a Redis span')
  child.kill('SIGTERM')
})

async function stopped (server: Spawned): Promise<void> {
  server.child.kill('SIGTERM')
  await server.exited
}

t.test('on shutdown the spans still queued are exported before the process exits', async (t) => {
  const receiver = await startOtlpReceiver(t)
  // A batch delay longer than the test: only the flush on close can send the span.
  const server = spawnServer(t, await baseEnv(t, receiver, { OTEL_BSP_SCHEDULE_DELAY: '600000' }), join(ROOT, 'dist', 'server.js'))
  const base = `http://127.0.0.1:${await server.port(60_000)}`
  const res = await fetch(`${base}/health/live`, { headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` } })
  t.equal(res.status, 200)
  await server.waitForLine((l) => l.reqId === reqIdOf(res) && l.msg === 'request completed')
  t.equal(receiver.bodies.length, 0, 'nothing sent before the batch is due')
  await stopped(server)
  t.ok(receiver.spans().some(serverSpan('GET /health/live', PARENT_TRACE)), 'the span arrived before the exit')
})

t.test('tracing off: no endpoint, or OTEL_SDK_DISABLED=true, exports nothing and adds no ids to log lines', async (t) => {
  const receiver = await startOtlpReceiver(t)
  for (const [what, change] of [['OTEL_SDK_DISABLED=true', { OTEL_SDK_DISABLED: 'true' }], ['no endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: '' }]] as const) {
    const env = await baseEnv(t, receiver, change)
    const server = spawnServer(t, env, join(ROOT, 'dist', 'server.js'))
    const base = `http://127.0.0.1:${await server.port(60_000)}`
    const res = await fetch(`${base}/health/ready`, { headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` } })
    t.equal(res.status, 200, what)
    const line = await server.waitForLine((l) => l.reqId === reqIdOf(res) && l.msg === 'request completed')
    t.notOk('trace_id' in line || 'span_id' in line, `${what}: no trace ids on log lines`)
    // A running SDK would export on close at the latest.
    await stopped(server)
    t.equal(receiver.bodies.length, 0, `${what}: nothing exported`)
  }
})
