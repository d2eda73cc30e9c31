import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { testDatabaseUrl } from '../helper.js'
import { ROOT } from '../fixtures/spawn.js'

// `fastify start` ignores the app's server options unless --options is given; the app
// then refuses to start rather than run without validated request ids, strict
// bodies, log redaction and proxy trust.
const CLI = join(ROOT, 'node_modules', 'fastify-cli', 'cli.js')

function start (args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, 'start', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ENVIRONMENT: 'test', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => { child.kill('SIGKILL') })
  return { child, exited, output: () => output }
}

t.test('fastify start without --options refuses to start, saying how to start it', async (t) => {
  const run = start(['-p', '0', 'dist/app.js'], { DATABASE_URL: await testDatabaseUrl() })
  const code = await run.exited
  t.not(code, 0, 'non-zero exit')
  t.match(run.output(), /fastify start --options dist\/app\.js/)
})

t.test('fastify start --options serves with the shared server options', async (t) => {
  const run = start(['--options', '-a', '127.0.0.1', '-p', '0', 'dist/app.js'], { DATABASE_URL: await testDatabaseUrl() })
  const deadline = Date.now() + 20_000
  let port: string | undefined
  while (port === undefined && Date.now() < deadline) {
    port = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(run.output())?.[1]
    if (port === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(port, 'listening')
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { headers: { 'x-request-id': 'bad id with spaces' } })
  t.equal(res.status, 200)
  const id = res.headers.get('x-request-id') ?? ''
  t.match(id, /^[0-9a-f-]{36}$/, 'an invalid X-Request-ID is replaced (genReqId from the server options)')
  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0, 'exits 0 on SIGTERM')
})
