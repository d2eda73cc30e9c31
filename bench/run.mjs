#!/usr/bin/env node
// `npm run bench`: loads our service and a minimal baseline doing the same work
// (bench/baseline.mjs) in the same run, with the same connections and duration,
// and reports each route's throughput and latency as a ratio to the baseline.
//
//   npm run bench -- [--duration 20] [--round 2] [--connections 50]
//                    [--routes live,me,notes,create,login,me-es256,me-eddsa,token-pkjwt,me-traced,notes-traced]
//                    [--tracing] (only me, notes and their traced twins: bench/tracing.mjs)
//                    [--peers fastify-plugins,express,flask] [--against ../other/dist/server.js]
//                    [--log-level info] [--smoke] [--no-pin]
//   npm run bench -- --scale        growth: 1,000,000 notes over 10,000 users (bench/scale.mjs)
//   npm run bench -- --callgrind    instructions per request under valgrind (bench/callgrind.mjs)
//
// The servers are pinned to core 0 and this load generator to core 1 when
// `taskset` exists, so that the two do not compete for the same core.
//
// Each route is measured in rounds over all servers (the service, the bare baseline,
// the peers of bench/peers/, another build with --against), the order rotated by one
// each round, `--round` seconds each, after a warm-up of all. A shared machine's speed
// drifts by more than the effect being measured; servers run side by side see the same
// drift, so each round gives one ratio per server and the route's ratio is their
// median (the spread is reported too).
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pg from 'pg'
import { identityRoutes } from './identity.mjs'
import { tracingRoutes } from './tracing.mjs'
import { PEERS, peerCommand, peerTargets } from './peers/index.mjs'

const root = join(import.meta.dirname, '..')
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    round: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    routes: { type: 'string', default: 'live,me,notes,create,login,me-es256,me-eddsa,token-pkjwt,me-traced,notes-traced' },
    tracing: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    // The smoke run (CI) takes the peers that need nothing but npm packages.
    peers: { type: 'string' },
    against: { type: 'string' },
    scale: { type: 'boolean', default: false },
    callgrind: { type: 'boolean', default: false },
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
const peerNames = (args.peers ?? (args.smoke ? 'fastify-plugins,express' : PEERS.join(','))).split(',').map((p) => p.trim()).filter(Boolean)
for (const name of peerNames) if (!PEERS.includes(name)) throw new Error(`unknown peer ${name}; known: ${PEERS.join(', ')}`)
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
  const database = await startDatabase()
  const dbUrl = database.url
  if (args.scale || args.callgrind) {
    const mod = args.scale ? await import('./scale.mjs') : await import('./callgrind.mjs')
    return mod.run({ root, args, database, serviceEnvFor, startServer, waitReady, freePort, seedData, load, measureServers, summarise, cpuMicros, hasTaskset, log, email: EMAIL, password: PASSWORD, round, median, machine })
  }
  const servicePort = await freePort()
  const baselinePort = await freePort()

  const serviceEnv = serviceEnvFor(dbUrl, servicePort)
  const service = startServer('service', [join(root, 'dist', 'server.js')], serviceEnv)
  await waitReady(servicePort, '/health/ready', service)
  const seed = await seedData(`http://127.0.0.1:${servicePort}`)

  const baseline = startServer('baseline', [join(root, 'bench', 'baseline.mjs')], {
    DATABASE_URL: dbUrl,
    JWT_SECRET_KEY,
    PORT: String(baselinePort)
  })
  await waitReady(baselinePort, '/health/live', baseline)

  const others = [{ name: 'baseline', port: baselinePort, pid: baseline.pid }]
  // Peers (bench/peers/): what a team would build instead, on the same database and data.
  for (const name of peerNames) {
    const command = peerCommand(name, { root, pinned: hasTaskset })
    if (command.skip) {
      log(`peer ${name} skipped: ${command.skip}`)
      continue
    }
    const port = await freePort()
    const child = startServer(name, command.argv, { DATABASE_URL: dbUrl, JWT_SECRET_KEY, PORT: String(port), ...command.env }, command.cmd)
    await waitReady(port, '/health/live', child)
    others.push({ name, port, pid: child.pid, targets: peerTargets[name] })
  }
  // Another build (--against .../dist/server.js): its own database, seeded the same way.
  let againstSeed
  if (args.against) {
    const port = await freePort()
    const url = await database.create('bench_against')
    const child = startServer('against', [args.against], serviceEnvFor(url, port))
    await waitReady(port, '/health/ready', child)
    againstSeed = await seedData(`http://127.0.0.1:${port}`)
    others.push({ name: 'against', port, pid: child.pid, accessToken: againstSeed.accessToken })
  }

  const routes = defineRoutes(seed, others).filter((r) => selected.has(r.id))
  const results = []
  const all = [{ name: 'service', port: servicePort, pid: service.pid }, ...others]
  for (const route of routes) {
    log(`${route.name}: ${rounds} round(s) of ${roundSeconds} s on each of ${all.length} servers`)
    results.push(await measureServers(route, all, database.postmasterPid))
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

  const report = { date: new Date().toISOString(), machine: machine(), duration, rounds, roundSeconds, warmupSeconds, connections, pinned: hasTaskset, logLevel: args['log-level'], servers: all.map((s) => s.name), against: args.against, results, responsiveness }
  print(report)
  if (!args.smoke) writeResults(report)

  const failed = results.filter((r) => r.service.errors > 0 || r.service.non2xx > 0)
  if (failed.length > 0) {
    process.stderr.write(`errors or non-2xx answers on: ${failed.map((r) => r.route).join(', ')}\n`)
    process.exitCode = 1
  }
}

/** The service's environment: production mode, rate limits out of the way, the chosen log level. */
function serviceEnvFor (dbUrl, port) {
  return {
    ENVIRONMENT: 'production',
    SECRET_KEY,
    JWT_SECRET_KEY,
    DATABASE_URL: dbUrl,
    DATABASE_SSL: 'disable',
    HOST: '127.0.0.1',
    PORT: String(port),
    RATE_LIMIT_MAX: '1000000000',
    RATE_LIMIT_AUTH_MAX: '1000000000',
    SHUTDOWN_DRAIN_DELAY: '0',
    LOG_LEVEL: args['log-level']
  }
}

function defineRoutes (seed, others = []) {
  const auth = { authorization: `Bearer ${seed.accessToken}` }
  const json = { 'content-type': 'application/json' }
  // A server with its own database (--against) has its own user, hence its own token.
  const byPort = (headers) => Object.fromEntries(others.filter((o) => o.accessToken).map((o) => [o.port, { ...headers, authorization: `Bearer ${o.accessToken}` }]))
  const authed = (route) => ({ ...route, headersByPort: byPort(route.headers) })
  return [
    { id: 'live', name: 'GET /health/live', target: 0.70, method: 'GET', path: '/health/live' },
    authed({ id: 'me', name: 'GET /auth/me', target: 0.85, method: 'GET', path: '/auth/me', headers: auth }),
    authed({ id: 'notes', name: 'GET /notes?limit=20', target: 0.90, method: 'GET', path: '/notes?limit=20', headers: auth }),
    authed({
      id: 'create',
      name: 'POST /notes',
      target: 0.90,
      method: 'POST',
      path: '/notes',
      headers: { ...auth, ...json },
      body: JSON.stringify({ title: 'benchmark note', body: 'written by npm run bench' })
    }),
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
    url: `http://127.0.0.1:${port}${route.pathByPort?.[port] ?? route.path}`,
    method: route.method,
    headers: route.headersByPort?.[port] ?? route.headers,
    body: route.body,
    ...(route.requests ? { requests: route.requests } : {}),
    connections: conns,
    duration: seconds,
    timeout: 10
  })
}

/** Two servers (bench/identity.mjs): `base` is the baseline row, `ours` the service's. */
async function measure (route, base, ours) {
  return measureServers(route, [{ ...ours, name: 'service' }, { ...base, name: 'baseline' }])
}

/**
 * Warms every server up on the route, then loads them in rounds, the order rotated
 * by one each round, so that all see the same drift of a shared machine. servers[0]
 * is the service; every other server's ratio is the service's throughput over its
 * own, round by round, and its CPU ratio its CPU per request over the service's.
 * With `postmasterPid`, PostgreSQL's CPU per request is measured too (all its
 * processes: only one server is loaded at a time).
 */
async function measureServers (route, servers, postmasterPid) {
  const conns = route.connections ?? connections
  if (warmupSeconds > 0) {
    for (const server of servers) await load(server.port, route, conns, warmupSeconds)
  }
  const runs = Object.fromEntries(servers.map((s) => [s.name, []]))
  for (let i = 0; i < rounds; i++) {
    const order = [...servers.slice(i % servers.length), ...servers.slice(0, i % servers.length)]
    for (const server of order) {
      const cpuBefore = cpuMicros(server.pid)
      const pgBefore = postmasterPid ? cpuMicros(postmasterPid, true) : NaN
      const result = await load(server.port, route, conns, roundSeconds)
      result.cpuMicros = cpuMicros(server.pid) - cpuBefore
      result.pgMicros = postmasterPid ? cpuMicros(postmasterPid, true) - pgBefore : NaN
      runs[server.name].push(result)
    }
  }
  const ours = runs.service
  const compare = (name) => {
    const ratios = ours.map((r, i) => r.requests.total / Math.max(1, runs[name][i].requests.total))
    return {
      ratio: round(median(ratios), 3),
      ratioRange: [round(Math.min(...ratios), 3), round(Math.max(...ratios), 3)],
      cpuRatio: round(median(runs[name].map((r, i) => perRequest(r) / perRequest(ours[i]))), 3)
    }
  }
  const others = servers.slice(1).map((s) => ({ name: s.name, targets: s.targets, ...summarise(runs[s.name], peakRss(s.pid)), ...compare(s.name) }))
  const base = others.find((o) => o.name === 'baseline')
  return {
    route: route.name,
    id: route.id,
    target: route.target,
    service: summarise(ours, peakRss(servers[0].pid)),
    ...(base ? { baseline: base, ratio: base.ratio, ratioRange: base.ratioRange, cpuRatio: base.cpuRatio } : {}),
    others
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

/**
 * The CPU time (user + system, microseconds, from /proc) of a process and its live
 * descendants (gunicorn's workers, a taskset wrapper's child); with `reaped`, also
 * that of its children that have exited (PostgreSQL's finished backends). NaN where
 * there is none.
 */
function cpuMicros (pid, reaped = false) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    let ticks = Number(fields[11]) + Number(fields[12]) + (reaped ? Number(fields[13]) + Number(fields[14]) : 0)
    for (const child of children(pid)) ticks += cpuMicros(child) / (1e6 / 100)
    return ticks * (1e6 / 100)
  } catch {
    return NaN
  }
}

function children (pid) {
  const out = []
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number))
    }
  } catch {}
  return out
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
  const pgCpu = list.reduce((n, r) => n + (r.pgMicros ?? NaN), 0)
  return {
    reqPerSec: round(total / seconds, 1),
    p50: median(list.map((r) => r.latency.p50)),
    p99: Math.max(...list.map((r) => r.latency.p99)),
    p999: Math.max(...list.map((r) => r.latency.p99_9 ?? r.latency.p999)),
    errors: list.reduce((n, r) => n + r.errors + r.timeouts, 0),
    non2xx: list.reduce((n, r) => n + r.non2xx, 0),
    total,
    ...(Number.isFinite(cpu) ? { cpuMicrosPerRequest: round(cpu / Math.max(1, total), 1) } : {}),
    ...(Number.isFinite(pgCpu) ? { pgMicrosPerRequest: round(pgCpu / Math.max(1, total), 1) } : {}),
    ...(rss !== undefined ? { peakRssMb: rss } : {})
  }
}

function print (report) {
  const lines = []
  lines.push('| route | server | req/s | p50 ms | p99 ms | p99.9 ms | errors | non-2xx | CPU µs/req | ratio (range) | target | peak RSS MB | PG µs/req | CPU ×  |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  const cpu = (s) => s.cpuMicrosPerRequest ?? '-'
  const pgCpu = (s) => s.pgMicrosPerRequest ?? '-'
  for (const r of report.results) {
    if (r.absolute) {
      lines.push(`| ${r.route} | service | ${r.service.reqPerSec} | ${r.service.p50} | ${r.service.p99} | ${r.service.p999} | ${r.service.errors} | ${r.service.non2xx} | ${cpu(r.service)} | - | ≥ ${r.target}/s ${r.service.reqPerSec >= r.target ? 'met' : 'MISSED'} | ${r.service.peakRssMb} | - | - |`)
      continue
    }
    const range = (o) => o.ratioRange[0] === o.ratioRange[1] ? '' : ` (${o.ratioRange[0]}–${o.ratioRange[1]})`
    lines.push(`| ${r.route} | service | ${r.service.reqPerSec} | ${r.service.p50} | ${r.service.p99} | ${r.service.p999} | ${r.service.errors} | ${r.service.non2xx} | ${cpu(r.service)} | 1 | | ${r.service.peakRssMb} | ${pgCpu(r.service)} | 1 |`)
    for (const o of r.others) {
      lines.push(`| | ${o.name} | ${o.reqPerSec} | ${o.p50} | ${o.p99} | ${o.p999} | ${o.errors} | ${o.non2xx} | ${cpu(o)} | **${o.ratio}**${range(o)} | ${targetCell(r, o)} | ${o.peakRssMb} | ${pgCpu(o)} | ${o.cpuRatio} |`)
    }
  }
  if (report.responsiveness) {
    const x = report.responsiveness
    lines.push('')
    lines.push(`While logins were hashed (${x.login.reqPerSec} logins/s, p99 ${x.login.p99} ms): /health/live ${x.live.reqPerSec} req/s, p99 ${x.liveP99Ms} ms (target < 25 ms), errors ${x.live.errors + x.login.errors}`)
  }
  lines.push('')
  lines.push('ratio: the service\'s throughput over that server\'s (median of the rounds); CPU ×: that server\'s CPU per request over the service\'s; PG µs/req: PostgreSQL\'s CPU per request while that server was loaded.')
  report.markdown = lines.join('\n')
  process.stdout.write(`\nBenchmark: ${report.rounds} round(s) of ${report.roundSeconds} s per route and server (after ${report.warmupSeconds} s of warm-up), ${report.connections} connections, ${report.pinned ? 'servers on core 0, load on core 1' : 'not pinned'}, service LOG_LEVEL=${report.logLevel}\n${report.machine}\n\n${report.markdown}\n`)
}

/** The targets of one compared server on one route, each marked met or MISSED. */
function targetCell (r, o) {
  const cells = []
  const mark = (ok) => ok ? 'met' : 'MISSED'
  if (o.name === 'baseline' && r.target !== null && r.target !== undefined) cells.push(`${r.target} ${mark(o.ratio >= r.target)}`)
  const t = o.targets
  if (t) {
    const login = r.id === 'login'
    if (t.throughput && !(login && t.exceptLogin?.includes('throughput'))) cells.push(`≥ ${t.throughput}× ${mark(o.ratio >= t.throughput)}`)
    if (t.cpu && !(login && t.exceptLogin?.includes('cpu'))) cells.push(`CPU ≥ ${t.cpu}× ${mark(o.cpuRatio >= t.cpu)}`)
  }
  return cells.join('; ')
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

/** High-water RSS in MB; of a process tree (gunicorn), the sum of its processes'. */
function peakRss (pid) {
  try {
    const kb = /VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    const own = kb ? Number(kb) / 1024 : 0
    const total = children(pid).reduce((n, c) => n + (peakRss(c) ?? 0), own)
    return total > 0 ? round(total, 1) : undefined
  } catch {
    return undefined
  }
}

/** Starts a server (on core 0 when pinned); `program` defaults to this Node.js. */
function startServer (name, argv, env, program = process.execPath) {
  // BENCH_PROFILE_DIR=<dir>: the service and the --against build write V8 CPU profiles there (node --cpu-prof), at exit.
  const profile = process.env.BENCH_PROFILE_DIR && program === process.execPath && (name === 'service' || name === 'against')
  if (profile) argv = ['--cpu-prof', `--cpu-prof-dir=${join(process.env.BENCH_PROFILE_DIR, name)}`, ...argv]
  const cmd = hasTaskset ? 'taskset' : program
  const cmdArgs = hasTaskset ? ['-c', '0', program, ...argv] : argv
  // BENCH_SERVER_LOGS=<dir>: each server's standard output (its log lines) to <dir>/<name>.log, to debug a failing run.
  const logDir = process.env.BENCH_SERVER_LOGS
  const stdout = logDir ? openSync(join(logDir, `${name}.log`), 'w') : 'ignore'
  const child = spawn(cmd, cmdArgs, { cwd: root, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', stdout, 'pipe'] })
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

async function waitReady (port, path, child, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
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

/**
 * The bench's PostgreSQL: a database on BENCH_DATABASE_URL's server, or an embedded
 * server. `create(name)` makes one more database on it (dropped at the end);
 * `postmasterPid`, where the server runs on this machine, lets the bench count
 * PostgreSQL's CPU per request.
 */
async function startDatabase () {
  let adminUrl
  let url
  if (process.env.BENCH_DATABASE_URL) {
    adminUrl = new URL(process.env.BENCH_DATABASE_URL).toString()
  } else {
    const { startEmbeddedPostgres } = await import('../dist/db/embedded-postgres.js')
    const dir = mkdtempSync(join(tmpdir(), 'bench-pg-'))
    chmodSync(dir, 0o755)
    const db = await startEmbeddedPostgres({ dir: join(dir, 'data'), port: await freePort(), database: 'bench', persistent: false })
    cleanups.push(async () => { await db.stop(); rmSync(dir, { recursive: true, force: true }) })
    log('embedded PostgreSQL started')
    adminUrl = db.adminUrl
    url = db.url
  }
  const create = async (name) => {
    const admin = new pg.Client({ connectionString: adminUrl })
    await admin.connect()
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    cleanups.push(async () => {
      // Through the server's own database: one cannot drop the database one is connected to.
      const c = new pg.Client({ connectionString: adminUrl })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    })
    const u = new URL(adminUrl)
    u.pathname = `/${name}`
    return u.toString()
  }
  if (url === undefined) url = await create(`bench_${process.pid}`)
  return { url, adminUrl, create, postmasterPid: await postmaster(adminUrl) }
}

/** The postmaster's pid from its data directory, when the server is on this machine and readable. */
async function postmaster (adminUrl) {
  const c = new pg.Client({ connectionString: adminUrl })
  try {
    await c.connect()
    const { rows } = await c.query("SELECT current_setting('data_directory') AS dir")
    const pid = Number(readFileSync(join(rows[0].dir, 'postmaster.pid'), 'utf8').split('\n')[0])
    return Number.isFinite(cpuMicros(pid)) ? pid : undefined
  } catch {
    return undefined
  } finally {
    await c.end().catch(() => {})
  }
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
