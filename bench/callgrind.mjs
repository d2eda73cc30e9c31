// `npm run bench -- --callgrind`: instructions per request, counted by valgrind's
// callgrind (issue #16), for the service and the bare baseline (bench/baseline.mjs) on
// GET /health/live and GET /auth/me. Unlike time on a shared machine, the same build
// gives nearly the same count run after run. Each server runs as
//
//   valgrind --tool=callgrind --callgrind-out-file=<dir>/<name>.out node <server>
//
// twice per route: WARMUP requests (V8 compiles the hot path), then REQUESTS (or twice
// as many) at CONNECTIONS connections, then exit; the difference of the two outputs'
// `totals:` lines over REQUESTS is the figure.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'

const WARMUP = 8000
const REQUESTS = 1500
const CONNECTIONS = 10

export async function run (ctx) {
  const { root, args, database, serviceEnvFor, startServer, waitReady, freePort, seedData, log } = ctx
  const smoke = args.smoke
  const warmup = smoke ? 200 : WARMUP
  const requests = smoke ? 100 : REQUESTS
  if (spawnSync('valgrind', ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error('--callgrind needs valgrind (not found)')
  const dir = mkdtempSync(join(tmpdir(), 'bench-callgrind-'))

  // The database and the user come from a service outside valgrind (migrations, an argon2 hash).
  const plainPort = await freePort()
  const plain = startServer('service-plain', [join(root, 'dist', 'server.js')], serviceEnvFor(database.url, plainPort))
  await waitReady(plainPort, '/health/ready', plain)
  const { accessToken } = await seedData(`http://127.0.0.1:${plainPort}`)

  const servers = [
    { name: 'service', script: join(root, 'dist', 'server.js'), env: (port) => serviceEnvFor(database.url, port), ready: '/health/ready' },
    { name: 'baseline', script: join(root, 'bench', 'baseline.mjs'), env: (port) => ({ DATABASE_URL: database.url, JWT_SECRET_KEY: serviceEnvFor('', 0).JWT_SECRET_KEY, PORT: String(port) }), ready: '/health/live' }
  ]
  const routes = [
    { name: 'GET /health/live', path: '/health/live', headers: {} },
    { name: 'GET /auth/me', path: '/auth/me', headers: { authorization: `Bearer ${accessToken}` } }
  ]
  const counts = {}
  let runs = 0
  /** One process under callgrind, everything counted: its whole total after `warmup` and then `requests` requests. */
  async function counted (server, route, requests) {
    const port = await freePort()
    const out = join(dir, `${server.name}-${runs++}.out`)
    log(`${server.name} under callgrind for ${route.name}, ${requests} requests after the warm-up (startup takes a while)`)
    const child = startServer(`${server.name}-callgrind`, ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, server.script], server.env(port), 'valgrind')
    await waitReady(port, server.ready, child, 300_000)
    await hit(port, route, warmup)
    await hit(port, route, requests)
    await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM') })
    return Number(/^totals:\s+(\d+)/m.exec(readFileSync(out, 'utf8'))?.[1])
  }
  const command = (name) => `valgrind --tool=callgrind --callgrind-out-file=<file> node ${name === 'service' ? 'dist/server.js' : 'bench/baseline.mjs'}`
  try {
    // Two whole runs per server and route, `requests` and twice as many after the same
    // warm-up; the difference is `requests` requests and nothing else (start-up, warm-up
    // and shutdown cancel out). Every server is counted the same way: toggling with
    // `callgrind_control --instr=on` worked for the baseline but never took effect in the
    // service's process (its dump said "Timerange: Basic block 0 - 0"), and a ratio of
    // two figures taken differently is not one.
    for (const server of servers) {
      for (const route of routes) {
        const once = await counted(server, route, requests)
        const twice = await counted(server, route, 2 * requests)
        const perRequest = Math.round((twice - once) / requests)
        counts[route.name] ??= {}
        counts[route.name][server.name] = perRequest
        log(`${route.name} on ${server.name}: ${perRequest.toLocaleString('en')} instructions per request`)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  const lines = ['| route | service instructions/req | baseline instructions/req | service ÷ baseline |', '|---|---|---|---|']
  for (const route of routes) {
    const c = counts[route.name]
    lines.push(`| ${route.name} | ${c.service.toLocaleString('en')} | ${c.baseline.toLocaleString('en')} | ${ctx.round(c.service / c.baseline, 3)} |`)
  }
  const markdown = `${lines.join('\n')}\n\n${warmup} requests of warm-up, then ${requests} counted, ${CONNECTIONS} connections (autocannon), the difference of two whole runs (${requests} and ${2 * requests} requests after the warm-up) per server and route:\n\n\`\`\`\n${servers.map((s) => command(s.name)).join('\n')}\n\`\`\`\n`
  process.stdout.write(`\nInstructions per request (callgrind), ${ctx.machine()}, service LOG_LEVEL=${args['log-level']}\n\n${markdown}`)
  if (!smoke) {
    const results = join(root, 'bench', 'results')
    mkdirSync(results, { recursive: true })
    writeFileSync(join(results, 'callgrind.md'), `# Instructions per request ${new Date().toISOString()}\n\n${markdown}`)
    log('results written to bench/results/callgrind.md')
  }
}

function hit (port, route, amount) {
  return autocannon({ url: `http://127.0.0.1:${port}${route.path}`, headers: route.headers, connections: CONNECTIONS, amount, timeout: 60 })
}
