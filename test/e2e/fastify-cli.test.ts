import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { productionEnv, testDatabaseUrl } from '../helper.js'
import { ROOT } from '../fixtures/spawn.js'

// `fastify start --options dist/app.js` is the development server's path
// (docs/operations.md, "Starting the service"): it runs with the shared server
// options, and where fastify-cli cannot keep the rules of `node dist/server.js` (it
// loads .env itself, picks its own address, exits 500 ms after SIGTERM without a
// drain) the app refuses: in production, and with a .env outside development.
const CLI = join(ROOT, 'node_modules', 'fastify-cli', 'cli.js')
const APP = join(ROOT, 'dist', 'app.js')

/** fastify-cli in its own empty folder (fastify-cli reads `.env` from there), with only `env` and PATH. */
function start (t: Test, args: string[], env: Record<string, string>, files: Record<string, string> = {}) {
  const cwd = mkdtempSync(join(tmpdir(), 'svc-cli-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text)
  const child = spawn(process.execPath, [CLI, 'start', ...args, APP], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ENVIRONMENT: 'test', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => { child.kill('SIGKILL') })
  async function port (): Promise<number> {
    for (;;) {
      const found = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]
      if (found !== undefined) return Number(found)
      if (child.exitCode !== null) throw new Error(`fastify start exited: ${output}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return { child, exited, output: () => output, port }
}

const FLAGS = ['--options', '-a', '127.0.0.1', '-p', '0']

t.test('fastify start without --options refuses to start, saying how to start it', async (t) => {
  const run = start(t, ['-p', '0'], { DATABASE_URL: await testDatabaseUrl() })
  const code = await run.exited
  t.not(code, 0, 'non-zero exit')
  t.match(run.output(), /fastify start --options dist\/app\.js/)
})

t.test('fastify start --options serves with the shared server options', async (t) => {
  const run = start(t, FLAGS, { DATABASE_URL: await testDatabaseUrl() })
  const port = await run.port()
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { headers: { 'x-request-id': 'bad id with spaces' } })
  t.equal(res.status, 200)
  const id = res.headers.get('x-request-id') ?? ''
  t.match(id, /^[0-9a-f-]{36}$/, 'an invalid X-Request-ID is replaced (genReqId from the server options)')
  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0, 'exits 0 on SIGTERM')
})

t.test('in production it refuses to start, naming node dist/server.js, even with a valid configuration', async (t) => {
  const run = start(t, FLAGS, await productionEnv())
  t.not(await run.exited, 0, 'non-zero exit')
  t.match(run.output(), 'fastify start is for development: in production start the service with `node dist/server.js`')
  t.notMatch(run.output(), /Server listening/, 'it never listened')
})

t.test('in production a .env in the working folder is named too (fastify-cli has loaded it), and DOCS_ENABLED from it never opens /docs', async (t) => {
  const run = start(t, FLAGS, await productionEnv(), { '.env': 'DOCS_ENABLED=true\nLOG_LEVEL=warn\n' })
  t.not(await run.exited, 0, 'non-zero exit')
  t.match(run.output(), /\.env is read only in development.*node dist\/server\.js/)
  t.notMatch(run.output(), /Server listening/, 'it never listened')
})

t.test('outside development (ENVIRONMENT=test) a .env is refused, as node dist/server.js would ignore it', async (t) => {
  const run = start(t, FLAGS, { DATABASE_URL: await testDatabaseUrl() }, { '.env': 'DOCS_ENABLED=false\n' })
  t.not(await run.exited, 0, 'non-zero exit')
  t.match(run.output(), /\.env is read only in development/)
  t.notMatch(run.output(), /fastify start is for development/, 'test is not production')
})

t.test('in development a .env is read, as node dist/server.js reads it', async (t) => {
  const run = start(t, FLAGS, { ENVIRONMENT: 'development', DATABASE_URL: await testDatabaseUrl() }, { '.env': 'DOCS_ENABLED=false\n' })
  const port = await run.port()
  t.equal((await fetch(`http://127.0.0.1:${port}/docs/json`)).status, 404, 'DOCS_ENABLED=false from .env applies')
  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0)
})
