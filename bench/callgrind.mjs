// `npm run bench -- --callgrind`: instructions per request, counted by valgrind's
// callgrind (issue #16), for the service and the bare baseline (bench/baseline.mjs) on
// GET /health/live and GET /auth/me. Unlike time on a shared machine, the same build
// gives nearly the same count run after run. Each server runs as
//
//   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=<dir>/<name>.out node <server>
//
// and per route: WARMUP requests uncounted (V8 compiles the hot path), then
// `callgrind_control --instr=on`, `--zero`, REQUESTS requests at CONNECTIONS connections,
// `--instr=off`, exit; the output's `totals:` line over REQUESTS is the figure. Where a
// process does not answer callgrind_control, two whole runs (REQUESTS and 2 x REQUESTS
// after the same warm-up) are counted and their difference is the figure.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'

const WARMUP = 3000
const REQUESTS = 1000
const CONNECTIONS = 10

export async function run (ctx) {
  const { root, args, database, serviceEnvFor, startServer, waitReady, freePort, seedData, log } = ctx
  const smoke = args.smoke
  const warmup = smoke ? 200 : WARMUP
  const requests = smoke ? 100 : REQUESTS
  if (spawnSync('callgrind_control', ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error('--callgrind needs valgrind (callgrind_control not found)')
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
  const methods = new Set()
  let runs = 0
  /**
   * One process under callgrind for one route. `toggle`: instrumentation off until the
   * warm-up is done, on for `requests` requests, off again; the figure is per request.
   * Otherwise everything is counted and the figure is the process's whole total.
   */
  async function counted (server, route, { warmup, requests, toggle }) {
    const port = await freePort()
    const out = join(dir, `${server.name}-${runs++}.out`)
    log(`${server.name} under callgrind for ${route.name} (startup takes a while)`)
    const flags = ['--tool=callgrind', ...(toggle ? ['--instr-atstart=no'] : []), `--callgrind-out-file=${out}`]
    const child = startServer(`${server.name}-callgrind`, [...flags, process.execPath, server.script], server.env(port), 'valgrind')
    await waitReady(port, server.ready, child, 300_000)
    await hit(port, route, warmup)
    if (toggle) {
      control(['--instr=on', String(child.pid)])
      control(['--zero', String(child.pid)])
    }
    await hit(port, route, requests)
    if (toggle) control(['--instr=off', String(child.pid)])
    await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM') })
    const total = Number(/^totals:\s+(\d+)/m.exec(readFileSync(out, 'utf8'))?.[1])
    return toggle ? Math.round(total / requests) : total
  }
  const command = (name) => `valgrind --tool=callgrind [--instr-atstart=no] --callgrind-out-file=<file> node ${name === 'service' ? 'dist/server.js' : 'bench/baseline.mjs'}`
  try {
    // One process per server and route, its count read from the file callgrind writes at
    // exit: `callgrind_control --dump` was acknowledged here but wrote nothing for the
    // service. Shutdown runs with instrumentation off, so it is not counted.
    for (const server of servers) {
      for (const route of routes) {
        let perRequest = await counted(server, route, { warmup, requests, toggle: true })
        let how = 'callgrind_control'
        if (perRequest === 0) {
          // This process never answered callgrind_control (seen with the service: "0 running
          // threads", nothing collected). Then: everything counted, twice, with `requests`
          // and with twice as many; the difference is `requests` requests and nothing else.
          const once = await counted(server, route, { warmup, requests, toggle: false })
          const twice = await counted(server, route, { warmup, requests: 2 * requests, toggle: false })
          perRequest = Math.round((twice - once) / requests)
          how = 'difference of two whole runs'
        }
        counts[route.name] ??= {}
        counts[route.name][server.name] = perRequest
        methods.add(how)
        log(`${route.name} on ${server.name}: ${perRequest.toLocaleString('en')} instructions per request (${how})`)
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
  const markdown = `${lines.join('\n')}\n\n${warmup} requests of warm-up, then ${requests} counted, ${CONNECTIONS} connections (autocannon), one process per server and route (${[...methods].join('; ')}):\n\n\`\`\`\n${servers.map((s) => command(s.name)).join('\n')}\n\`\`\`\n`
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

function control (argv) {
  const r = spawnSync('callgrind_control', argv, { encoding: 'utf8' })
  if (r.status !== 0 || !/OK\./.test(r.stdout)) throw new Error(`callgrind_control ${argv.join(' ')}: ${r.stderr || r.stdout}`)
}
