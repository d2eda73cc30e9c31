import { randomUUID } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import t from 'tap'
import { buildServer } from '../../serve.js'
import { build, injectAs, loginAs, testConfig } from '../helper.js'

interface Sample { name: string, labels: Record<string, string>, value: number }

/** Prometheus text format 0.0.4, as a scraper reads it. */
function parseMetrics (text: string): { samples: Sample[], types: Map<string, string> } {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) { types.set(type[1]!, type[2]!); continue }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`unparseable metrics line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return { samples, types }
}

function find (samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

t.test('serves Prometheus text with the named series on the main port by default', async (t) => {
  const app = await build(t)
  await app.inject({ method: 'GET', url: '/health/live' })
  await app.inject({ method: 'GET', url: '/health/live' })

  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const { samples, types } = parseMetrics(res.body)

  t.equal(types.get('http_request_duration_seconds'), 'histogram')
  t.equal(types.get('http_requests_total'), 'counter')
  const live = find(samples, 'http_request_duration_seconds_count', { method: 'GET', route: '/health/live', status_code: '200' })
  t.equal(live.length, 1, 'one series for the route pattern')
  t.equal(live[0]?.value, 2)
  t.equal(find(samples, 'http_requests_total', { route: '/health/live' })[0]?.value, 2)
  t.ok(find(samples, 'http_request_duration_seconds_bucket', { route: '/health/live', le: '+Inf' }).length === 1)

  // prom-client defaults: process and event loop.
  t.ok(find(samples, 'process_cpu_user_seconds_total').length === 1)
  t.ok(find(samples, 'nodejs_eventloop_lag_seconds').length === 1)
  t.ok(find(samples, 'process_resident_memory_bytes').length === 1)

  for (const state of ['total', 'idle', 'waiting']) {
    t.equal(find(samples, 'db_pool_connections', { state }).length, 1, `db_pool_connections{state="${state}"}`)
  }
  t.ok(find(samples, 'db_pool_connections', { state: 'total' })[0]!.value >= 1, 'the pool has a connection after migrations')
  t.equal(types.get('auth_revoked_sessions'), 'gauge')
  t.equal(find(samples, 'auth_revoked_sessions').length, 1)
  t.equal(types.get('rate_limit_rejections_total'), 'counter')
  t.equal(find(samples, 'rate_limit_rejections_total').length, 1)
})

t.test('gives every unknown URL one shared route label', async (t) => {
  const app = await build(t)
  for (const url of ['/nope', '/nope/2', '/a/b/c?x=1', '/%2e%2e/etc/passwd']) {
    await app.inject({ method: 'GET', url })
  }
  await app.inject({ method: 'DELETE', url: '/health/live' })
  const { samples } = parseMetrics((await app.inject({ method: 'GET', url: '/metrics' })).body)
  const unmatched = find(samples, 'http_requests_total', { route: 'unmatched' })
  t.same(unmatched.map((s) => [s.labels.method, s.labels.status_code, s.value]).sort(), [['DELETE', '404', 1], ['GET', '404', 4]])
  t.notOk(samples.some((s) => s.labels.route?.includes('nope') || s.labels.route?.includes('passwd')), 'no raw URL becomes a label')
})

t.test('does not count scrapes, and the scrape is never rate limited', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_MAX: '2' } })
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    t.equal(res.statusCode, 200, `scrape ${i + 1}`)
  }
  const { samples } = parseMetrics((await app.inject({ method: 'GET', url: '/metrics' })).body)
  t.equal(find(samples, 'http_requests_total', { route: '/metrics' }).length, 0)
})

t.test('reports the revocation cache size and rate-limit rejections', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_MAX: '3' } })
  const user = await loginAs(app)
  const logout = await injectAs(app, user.accessToken, { method: 'POST', url: '/auth/logout' })
  t.equal(logout.statusCode, 204)
  for (let i = 0; i < 5; i++) await app.inject({ method: 'GET', url: '/nope' })

  const { samples } = parseMetrics((await app.inject({ method: 'GET', url: '/metrics' })).body)
  t.equal(find(samples, 'auth_revoked_sessions')[0]?.value, app.revocation.size)
  t.ok(app.revocation.size >= 1, 'the logged-out session is in the cache')
  t.equal(find(samples, 'rate_limit_rejections_total')[0]?.value, app.rateLimitStats.rejections)
  t.ok(app.rateLimitStats.rejections >= 2, 'the requests over the limit were refused')
  t.equal(find(samples, 'http_requests_total', { route: 'unmatched', status_code: '429' })[0]?.value, app.rateLimitStats.rejections)
})

t.test('labels a request to a note by its route pattern, not its URL', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const created = await injectAs(app, user.accessToken, { method: 'POST', url: '/notes', payload: { title: 'measured' } })
  const id = created.json<{ id: string }>().id
  await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${id}` })
  await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${randomUUID()}` })
  await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${id}`, payload: { title: 'again' } })

  const { samples } = parseMetrics((await app.inject({ method: 'GET', url: '/metrics' })).body)
  t.equal(find(samples, 'http_request_duration_seconds_count', { method: 'GET', route: '/notes/:id', status_code: '200' })[0]?.value, 1)
  t.equal(find(samples, 'http_request_duration_seconds_count', { method: 'GET', route: '/notes/:id', status_code: '404' })[0]?.value, 1)
  t.equal(find(samples, 'http_request_duration_seconds_count', { method: 'PATCH', route: '/notes/:id', status_code: '200' })[0]?.value, 1)
  t.ok(find(samples, 'http_request_duration_seconds_count', { method: 'POST', status_code: '201' })[0]?.labels.route?.startsWith('/notes'))
  t.notOk(samples.some((s) => s.labels.route?.includes(id)), 'no note id becomes a label')
})

t.test('keeps two apps in one process apart (a registry per app)', async (t) => {
  const a = await build(t)
  const b = await build(t)
  await a.inject({ method: 'GET', url: '/health/live' })
  const fromB = parseMetrics((await b.inject({ method: 'GET', url: '/metrics' })).body).samples
  t.equal(find(fromB, 'http_requests_total', { route: '/health/live' }).length, 0)
  const fromA = parseMetrics((await a.inject({ method: 'GET', url: '/metrics' })).body).samples
  t.equal(find(fromA, 'http_requests_total', { route: '/health/live' })[0]?.value, 1)
})

t.test('serves no /metrics when METRICS_ENABLED=false', async (t) => {
  const app = await build(t, { env: { METRICS_ENABLED: 'false' } })
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'NOT_FOUND')
  t.equal(app.metrics, undefined)
})

t.test('with METRICS_PORT, serves /metrics only on that port', async (t) => {
  const port = await freePort()
  const app = await build(t, { env: { METRICS_PORT: String(port) } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const main = (app.server.address() as { port: number }).port

  const onMain = await fetch(`http://127.0.0.1:${main}/metrics`)
  t.equal(onMain.status, 404, 'the main port does not expose metrics')
  t.equal(((await onMain.json()) as { code: string }).code, 'NOT_FOUND')
  await fetch(`http://127.0.0.1:${main}/health/live`).then((r) => r.arrayBuffer())

  const scrape = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { 'x-request-id': 'scrape-1' } })
  t.equal(scrape.status, 200)
  t.equal(scrape.headers.get('x-request-id'), 'scrape-1', 'the request id is echoed here too')
  t.match(scrape.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const { samples } = parseMetrics(await scrape.text())
  t.equal(find(samples, 'http_requests_total', { route: '/health/live' })[0]?.value, 1, 'measures the main port')
  t.equal(find(samples, 'http_requests_total', { route: 'unmatched', status_code: '404' })[0]?.value, 1, 'the refused /metrics on the main port')

  const other = await fetch(`http://127.0.0.1:${port}/health/live`)
  t.equal(other.status, 404, 'the metrics port serves nothing else')
  t.match(other.headers.get('x-request-id'), /^[0-9a-f-]{36}$/)
  await other.arrayBuffer()
  const post = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })
  t.equal(post.status, 404)
  await post.arrayBuffer()

  await app.close()
  t.equal(app.metrics?.server?.listening, false, 'the metrics listener closes with the app')
  await t.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'connection refused after close')
})

t.test('refuses to start when METRICS_PORT is taken', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const port = (blocker.address() as { port: number }).port
  const config = await testConfig({ METRICS_PORT: String(port) })
  const app = await buildServer(config)
  await t.rejects(async () => { await app.ready() }, { code: 'EADDRINUSE' })
  await app.close()
})

t.test('metric names follow Prometheus\'s rule (what promtool check metrics enforces): only counters end in _total, and counters do', async (t) => {
  const app = await build(t)
  await app.inject({ method: 'GET', url: '/health/live' })
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const { types } = parseMetrics(text)
  t.ok(types.size > 10, 'the default metrics are there')
  for (const [name, type] of types) {
    if (type === 'counter') t.match(name, /_total$/, `counter ${name} ends in _total`)
    else t.notMatch(name, /_total$/, `${type} ${name} does not end in _total`)
    t.match(name, /^[a-z_:][a-z0-9_:]*$/, `${name} is snake_case`)
  }
  t.ok(types.has('nodejs_active_handles'), 'the per-type gauges stay')
  t.ok(types.has('http_requests_total'))
  // promtool itself, where it is installed (the `prometheus` package).
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  if (promtool.error === undefined) t.equal(promtool.status, 0, `promtool check metrics: ${promtool.stdout}${promtool.stderr}`)
  else t.comment('promtool is not installed: checked by the rule above only')
})
