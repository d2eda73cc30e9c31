#!/usr/bin/env node
// `npm run bench`: loads our service and a minimal baseline doing the same work
// (bench/baseline.mjs) in the same run, with the same connections and duration,
// and reports each route's throughput and latency as a ratio to the baseline.
//
//   npm run bench -- [--duration 20] [--round 2] [--connections 50]
//                    [--routes live,me,notes,create,login,me-es256,me-eddsa,token-pkjwt,me-traced,notes-traced]
//                    [--tracing] (only me, notes and their traced twins: bench/tracing.mjs)
//                    [--log-level info] [--smoke] [--no-pin]
//
// The servers are pinned to core 0 and this load generator to core 1 when
// `taskset` exists, so that the two do not compete for the same core.
//
// Each route is measured in rounds: baseline then service, service then
// baseline, and so on, `--round` seconds each, after a warm-up of both. A shared
// machine's speed drifts by more than the effect being measured; two runs side by
// side see the same drift, so each round gives one ratio and the route's ratio is
// their median (the spread is reported too).
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pg from 'pg'
import { identityRoutes } from './identity.mjs'
import { tracingRoutes } from './tracing.mjs'

const root = join(import.meta.dirname, '..')
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    round: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    routes: { type: 'string', default: 'live,me,notes,create,login,me-es256,me-eddsa,token-pkjwt,me-traced,notes-traced' },
    tracing: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    // The service's LOG_LEVEL: info (production's default) logs a line per request.
    'log-level': { type: 'string', default: 'info' }
  }
})
const duration = args.smoke ? 2 : Number(args.duration)
const roundSeconds = Math.min(duration, Number(args.round))
const rounds = Math.max(1, Math.round(duration / roundSeconds))
const warmupSeconds = args.smoke ? 0 : 1
const connections = Number(args.connections)
const selected = new Set((args.tracing ? 'me,notes,me-traced,notes-traced' : args.routes).split(',').map((r) => r.trim()))
const hasTaskset = !args['no-pin'] && spawnSync('taskset', ['-c', '0', 'true']).status === 0

// Re-run this process on core 1 so that the load generator never shares the servers' core.
if (hasTaskset && process.env.BENCH_PINNED !== '1') {
  const child = spawnSync('taskset', ['-c', '1', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, BENCH_PINNED: '1' }
  })
  process.exit(child.status ?? 1)
}

const log = (msg) => process.stderr.write(`# ${msg}\n`)
const SECRET_KEY = 'bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz'
const JWT_SECRET_KEY = 'bench-jwt-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz'
const EMAIL = 'bench@example.com'
const PASSWORD = 'correct horse battery staple'

const cleanups = []
async function cleanup () {
  for (const fn of cleanups.reverse()) {
    try { await fn() } catch {}
  }
}
process.on('SIGINT', async () => { await cleanup(); process.exit(130) })

try {
  await main()
} catch (err) {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`)
  process.exitCode = 1
} finally {
  await cleanup()
}

async function main () {
  const dbUrl = await database()
  const servicePort = await freePort()
  const baselinePort = await freePort()

  const serviceEnv = {
    ENVIRONMENT: 'production',
    SECRET_KEY,
    JWT_SECRET_KEY,
    DATABASE_URL: dbUrl,
    DATABASE_SSL: 'disable',
    HOST: '127.0.0.1',
    PORT: String(servicePort),
    RATE_LIMIT_MAX: '1000000000',
    RATE_LIMIT_AUTH_MAX: '1000000000',
    SHUTDOWN_DRAIN_DELAY: '0',
    LOG_LEVEL: args['log-level']
  }
  const service = startServer('service', [join(root, 'dist', 'server.js')], serviceEnv)
  await waitReady(servicePort, '/health/ready', service)
  const seed = await seedData(`http://127.0.0.1:${servicePort}`)

  const baseline = startServer('baseline', [join(root, 'bench', 'baseline.mjs')], {
    DATABASE_URL: dbUrl,
    JWT_SECRET_KEY,
    PORT: String(baselinePort)
  })
  await waitReady(baselinePort, '/health/live', baseline)

  const routes = defineRoutes(seed).filter((r) => selected.has(r.id))
  const results = []
  for (const route of routes) {
    log(`${route.name}: ${rounds} round(s) of ${roundSeconds} s on each server`)
    results.push(await measure(route, { name: 'baseline', port: baselinePort, pid: baseline.pid }, { name: 'service', port: servicePort, pid: service.pid }))
  }

  // Asymmetric signing and client assertions (bench/identity.mjs): their own servers.
  const hs256 = { port: servicePort, pid: service.pid, accessToken: seed.accessToken }
  const context = { root, selected, env: serviceEnv, email: EMAIL, password: PASSWORD, seconds: warmupSeconds + duration, hs256, startServer, waitReady, freePort, log }
  const identity = await identityRoutes(context)
  for (const route of identity) {
    await route.prepare?.()
    log(`${route.name}: ${rounds} round(s) of ${roundSeconds} s${route.absolute ? '' : ' on each server'}`)
    results.push(route.absolute ? await measureAlone(route, route.servers[0]) : await measure(route, ...route.servers))
  }

  // Tracing on against tracing off (bench/tracing.mjs): the service above is the "off" one.
  const tracing = await tracingRoutes({ ...context, off: hs256, cleanups })
  for (const route of tracing) {
    log(`${route.name}: ${rounds} round(s) of ${roundSeconds} s on each server`)
    results.push(await measure(route, ...route.servers))
  }

  let responsiveness
  if (selected.has('login')) {
    log('login under load: /health/live p99 while logins are hashed')
    responsiveness = await loginResponsiveness(servicePort)
  }

  const report = { date: new Date().toISOString(), machine: machine(), duration, rounds, roundSeconds, warmupSeconds, connections, pinned: hasTaskset, logLevel: args['log-level'], results, responsiveness }
  print(report)
  if (!args.smoke) writeResults(report)

  const failed = results.filter((r) => r.service.errors > 0 || r.service.non2xx > 0)
  if (failed.length > 0) {
    process.stderr.write(`errors or non-2xx answers on: ${failed.map((r) => r.route).join(', ')}\n`)
    process.exitCode = 1
  }
}

function defineRoutes (seed) {
  const auth = { authorization: `Bearer ${seed.accessToken}` }
  const json = { 'content-type': 'application/json' }
  return [
    { id: 'live', name: 'GET /health/live', target: 0.70, method: 'GET', path: '/health/live' },
    { id: 'me', name: 'GET /auth/me', target: 0.90, method: 'GET', path: '/auth/me', headers: auth },
    { id: 'notes', name: 'GET /notes?limit=20', target: 0.90, method: 'GET', path: '/notes?limit=20', headers: auth },
    {
      id: 'create',
      name: 'POST /notes',
      target: 0.85,
      method: 'POST',
      path: '/notes',
      headers: { ...auth, ...json },
      body: JSON.stringify({ title: 'benchmark note', body: 'written by npm run bench' })
    },
    {
      id: 'login',
      name: 'POST /auth/login',
      target: null,
      // argon2id costs tens of milliseconds of CPU per login: a few connections saturate it.
      connections: 4,
      method: 'POST',
      path: '/auth/login',
      headers: json,
      body: JSON.stringify({ email: EMAIL, password: PASSWORD })
    }
  ]
}

function load (port, route, conns, seconds) {
  return autocannon({
    url: `http://127.0.0.1:${port}${route.path}`,
    method: route.method,
    headers: route.headersByPort?.[port] ?? route.headers,
    body: route.body,
    ...(route.requests ? { requests: route.requests } : {}),
    connections: conns,
    duration: seconds,
    timeout: 10
  })
}

/**
 * Warms both servers up on the route, then loads them in alternating rounds
 * (B S, S B, B S, ...) so that both see the same drift of a shared machine.
 */
async function measure (route, base, ours) {
  const conns = route.connections ?? connections
  if (warmupSeconds > 0) {
    await load(base.port, route, conns, warmupSeconds)
    await load(ours.port, route, conns, warmupSeconds)
  }
  const runs = { baseline: [], service: [] }
  for (let i = 0; i < rounds; i++) {
    for (const server of i % 2 === 0 ? [base, ours] : [ours, base]) {
      const cpuBefore = cpuMicros(server.pid)
      const result = await load(server.port, route, conns, roundSeconds)
      result.cpuMicros = cpuMicros(server.pid) - cpuBefore
      runs[server.name].push(result)
    }
  }
  const ratios = runs.service.map((r, i) => r.requests.total / Math.max(1, runs.baseline[i].requests.total))
  return {
    route: route.name,
    id: route.id,
    target: route.target,
    service: summarise(runs.service, peakRss(ours.pid)),
    baseline: summarise(runs.baseline, peakRss(base.pid)),
    ratio: round(median(ratios), 3),
    ratioRange: [round(Math.min(...ratios), 3), round(Math.max(...ratios), 3)],
    cpuRatio: round(median(runs.baseline.map((r, i) => perRequest(r) / perRequest(runs.service[i]))), 3)
  }
}

/** A route with an absolute target (requests per second), measured on one server in rounds after a warm-up. */
async function measureAlone (route, server) {
  const conns = route.connections ?? connections
  if (warmupSeconds > 0) await load(server.port, route, conns, warmupSeconds)
  const runs = []
  for (let i = 0; i < rounds; i++) {
    const cpuBefore = cpuMicros(server.pid)
    const result = await load(server.port, route, conns, roundSeconds)
    result.cpuMicros = cpuMicros(server.pid) - cpuBefore
    runs.push(result)
  }
  const service = summarise(runs, peakRss(server.pid))
  return { route: route.name, id: route.id, target: route.target, absolute: true, service, ratio: round(service.reqPerSec / route.target, 3), ratioRange: [] }
}

/** This process's CPU time (user + system) in microseconds, from /proc; NaN where there is none. */
function cpuMicros (pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * (1e6 / 100)
  } catch {
    return NaN
  }
}

function perRequest (run) {
  return run.cpuMicros / Math.max(1, run.requests.total)
}

function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function loginResponsiveness (port) {
  const logins = autocannon({
    url: `http://127.0.0.1:${port}/auth/login`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
    connections: 4,
    duration
  })
  const live = autocannon({ url: `http://127.0.0.1:${port}/health/live`, connections, duration })
  const [l, h] = await Promise.all([logins, live])
  return {
    login: summarise(l),
    live: summarise(h),
    liveP99Ms: h.latency.p99,
    target: 'p99 of /health/live under 25 ms at 50 connections while logins are hashed'
  }
}

/**
 * One server's rounds on a route: throughput over all of them; the median round's
 * p50 and the worst round's p99 and p99.9 (autocannon's histograms cannot be merged).
 * A single run (the login responsiveness check) is one round.
 */
function summarise (runs, rss) {
  const list = Array.isArray(runs) ? runs : [runs]
  const total = list.reduce((n, r) => n + r.requests.total, 0)
  const seconds = list.reduce((n, r) => n + r.duration, 0)
  const cpu = list.reduce((n, r) => n + (r.cpuMicros ?? NaN), 0)
  return {
    reqPerSec: round(total / seconds, 1),
    p50: median(list.map((r) => r.latency.p50)),
    p99: Math.max(...list.map((r) => r.latency.p99)),
    p999: Math.max(...list.map((r) => r.latency.p99_9 ?? r.latency.p999)),
    errors: list.reduce((n, r) => n + r.errors + r.timeouts, 0),
    non2xx: list.reduce((n, r) => n + r.non2xx, 0),
    total,
    ...(Number.isFinite(cpu) ? { cpuMicrosPerRequest: round(cpu / Math.max(1, total), 1) } : {}),
    ...(rss !== undefined ? { peakRssMb: rss } : {})
  }
}

function print (report) {
  const lines = []
  lines.push('| route | server | req/s | p50 ms | p99 ms | p99.9 ms | errors | non-2xx | CPU µs/req | ratio (range) | target | peak RSS MB |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|')
  const cpu = (s) => s.cpuMicrosPerRequest ?? '-'
  for (const r of report.results) {
    if (r.absolute) {
      lines.push(`| ${r.route} | service | ${r.service.reqPerSec} | ${r.service.p50} | ${r.service.p99} | ${r.service.p999} | ${r.service.errors} | ${r.service.non2xx} | ${cpu(r.service)} | - | ≥ ${r.target}/s ${r.service.reqPerSec >= r.target ? 'met' : 'MISSED'} | ${r.service.peakRssMb} |`)
      continue
    }
    const ok = r.target === null ? '' : (r.ratio >= r.target ? 'met' : 'MISSED')
    const range = r.ratioRange[0] === r.ratioRange[1] ? '' : ` (${r.ratioRange[0]}–${r.ratioRange[1]})`
    lines.push(`| ${r.route} | service | ${r.service.reqPerSec} | ${r.service.p50} | ${r.service.p99} | ${r.service.p999} | ${r.service.errors} | ${r.service.non2xx} | ${cpu(r.service)} | **${r.ratio}**${range} | ${r.target ?? '-'} ${ok} | ${r.service.peakRssMb} |`)
    lines.push(`| | baseline | ${r.baseline.reqPerSec} | ${r.baseline.p50} | ${r.baseline.p99} | ${r.baseline.p999} | ${r.baseline.errors} | ${r.baseline.non2xx} | ${cpu(r.baseline)} | 1 | | ${r.baseline.peakRssMb} |`)
  }
  if (report.responsiveness) {
    const x = report.responsiveness
    lines.push('')
    lines.push(`While logins were hashed (${x.login.reqPerSec} logins/s, p99 ${x.login.p99} ms): /health/live ${x.live.reqPerSec} req/s, p99 ${x.liveP99Ms} ms (target < 25 ms), errors ${x.live.errors + x.login.errors}`)
  }
  report.markdown = lines.join('\n')
  process.stdout.write(`\nBenchmark: ${report.rounds} round(s) of ${report.roundSeconds} s per route and server (after ${report.warmupSeconds} s of warm-up), ${report.connections} connections, ${report.pinned ? 'servers on core 0, load on core 1' : 'not pinned'}, service LOG_LEVEL=${report.logLevel}\n${report.machine}\n\n${report.markdown}\n`)
}

function writeResults (report) {
  const dir = join(root, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(report, null, 2) + '\n')
  writeFileSync(join(dir, 'latest.md'), `# Benchmark ${report.date}\n\n${report.machine}; ${report.rounds} alternating rounds of ${report.roundSeconds} s per route and server, ${report.connections} connections, service LOG_LEVEL=${report.logLevel}.\n\n${report.markdown}\n`)
  log('results written to bench/results/latest.{json,md}')
}

function machine () {
  let cpu = 'unknown CPU'
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu
  } catch {}
  return `Node ${process.version}, ${cpu}`
}

function peakRss (pid) {
  try {
    const kb = /VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return kb ? round(Number(kb) / 1024, 1) : undefined
  } catch {
    return undefined
  }
}

function startServer (name, argv, env) {
  const cmd = hasTaskset ? 'taskset' : process.execPath
  const cmdArgs = hasTaskset ? ['-c', '0', process.execPath, ...argv] : argv
  const child = spawn(cmd, cmdArgs, { cwd: root, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  child.on('exit', (code) => { if (code && code !== 0) process.stderr.write(`${name} exited ${code}: ${stderr}\n`) })
  cleanups.push(() => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.on('exit', resolve)
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 12_000).unref()
  }))
  return child
}

async function waitReady (port, path, child) {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode} before it was ready (its message is above)`)
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      if (res.ok) return
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`server on port ${port} did not become ready`)
}

async function seedData (base) {
  const json = { 'content-type': 'application/json' }
  const reg = await fetch(`${base}/auth/register`, { method: 'POST', headers: json, body: JSON.stringify({ email: EMAIL, password: PASSWORD }) })
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${await reg.text()}`)
  const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: json, body: JSON.stringify({ email: EMAIL, password: PASSWORD }) })
  if (login.status !== 200) throw new Error(`login: ${login.status} ${await login.text()}`)
  const { access_token: accessToken } = await login.json()
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${base}/notes`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${accessToken}` },
      body: JSON.stringify({ title: `note ${i}`, body: 'x'.repeat(200) })
    })
    if (res.status !== 201) throw new Error(`seed note: ${res.status} ${await res.text()}`)
  }
  log('seeded one user with 50 notes')
  return { accessToken }
}

async function database () {
  if (process.env.BENCH_DATABASE_URL) {
    const url = new URL(process.env.BENCH_DATABASE_URL)
    const adminUrl = url.toString()
    const name = `bench_${process.pid}`
    const admin = new pg.Client({ connectionString: adminUrl })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    cleanups.push(async () => {
      // Through the server's own database: one cannot drop the database one is connected to.
      const c = new pg.Client({ connectionString: adminUrl })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    })
    url.pathname = `/${name}`
    return url.toString()
  }
  const { startEmbeddedPostgres } = await import('../dist/db/embedded-postgres.js')
  const dir = mkdtempSync(join(tmpdir(), 'bench-pg-'))
  chmodSync(dir, 0o755)
  const db = await startEmbeddedPostgres({ dir: join(dir, 'data'), port: await freePort(), database: 'bench', persistent: false })
  cleanups.push(async () => { await db.stop(); rmSync(dir, { recursive: true, force: true }) })
  log('embedded PostgreSQL started')
  return db.url
}

function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function round (n, digits) {
  const f = 10 ** digits
  return Math.round(n * f) / f
}
