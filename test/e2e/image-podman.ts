import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t, { type Test } from 'tap'
import { ADMIN_URL } from '../helper.js'
import { collectLines } from '../fixtures/json-lines.js'
import { ROOT, execForm, finalStage, instructions, readDockerfile } from '../fixtures/deploy/dockerfile.js'
import { freePort } from '../fixtures/deploy/process.js'
import { Podman, available, ensureBaseImage, run } from '../fixtures/deploy/podman.js'

// The image, built from the Dockerfile with Podman and run as a container, every
// property checked from outside it. Not part of `npm test` (a build takes minutes
// of both cores): `npm run test:image`, and a step of its own in .ci/run.
// Needs root, podman, buildah and debootstrap (docs/operations.md).

// Planted in the build context beside the project's files: what a developer's
// checkout holds and .dockerignore must keep out of every layer.
const DECOY_MARKER = `decoy-${randomBytes(8).toString('hex')}`
const DECOYS = ['.env', '.env.local', '.data/postgres/PG_VERSION', '.git/HEAD', 'node_modules/decoy-package/index.js', 'dist/decoy.js', 'coverage/decoy.json', '.tap/decoy', 'decoy-key.pem', 'npm-debug.log']

const reasons: string[] = []
if (process.getuid?.() !== 0) reasons.push('it needs root (Podman runs as root on these machines)')
for (const tool of ['podman', 'buildah', 'debootstrap']) {
  if (!(await available(tool))) reasons.push(`${tool} is not installed (apt-get install -y podman buildah runc debootstrap)`)
}
if (reasons.length > 0) {
  // CI installs them: there, a missing tool is a failure, never a skip.
  if (process.env.CI) t.fail(`the image test cannot run: ${reasons.join('; ')}`)
  else t.plan(0, `skipped: ${reasons.join('; ')}`)
} else {
  await main()
}

async function main (): Promise<void> {
  const dockerfile = readDockerfile()
  const runtime = finalStage(dockerfile)
  const nodeImage = dockerfile.globalArgs.map((a) => /^NODE_IMAGE=(\S+)$/.exec(a.args)?.[1]).find(Boolean)!
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  const podman = new Podman()
  t.teardown(() => podman.cleanup())

  const base = await ensureBaseImage(podman, nodeImage)
  t.comment(`base ${base.name} (Node.js ${base.node}, npm ${base.npm}): ${base.source} in ${base.ms} ms`)

  // One tag per machine, replaced by each run (CI clones into a new folder each time):
  // its layers are the next build's cache, and old images do not pile up.
  const tag = 'localhost/secure-fastify-service:image-test'
  const previous = (await podman.run(['image', 'inspect', '--format', '{{.Id}}', tag])).stdout.trim()
  const revision = (await run('git', ['rev-parse', 'HEAD'], { cwd: ROOT })).stdout.trim() || 'unknown'
  const created = new Date().toISOString()
  const buildStarted = Date.now()
  // --pull=never: the base must be the one assembled above; --format docker keeps HEALTHCHECK (OCI has none).
  const context = await stageContext()
  t.teardown(() => rmSync(context, { recursive: true, force: true }))
  const buildArgs = ['--format', 'docker', '--pull=never', '--build-arg', `REVISION=${revision}`, '--build-arg', `CREATED=${created}`, '--file', join(context, 'Dockerfile')]
  const build = await podman.run(['build', ...buildArgs, '--tag', tag, context], { timeoutMs: 900_000 })
  const buildMs = Date.now() - buildStarted
  if (build.code !== 0) {
    t.fail(`podman build failed (exit ${build.code})`, { stdout: build.stdout.slice(-6000), stderr: build.stderr.slice(-3000) })
    return
  }
  // The build stage on its own (every layer cached by now): the one place `COPY . .` could carry the decoys.
  // Kept tagged, as the image is: removing it would take the layer cache of the next run with it.
  const buildStageTag = `${tag}-build-stage`
  const previousBuildStage = (await podman.run(['image', 'inspect', '--format', '{{.Id}}', buildStageTag])).stdout.trim()
  const buildStage = await podman.run(['build', ...buildArgs, '--target', 'build', '--tag', buildStageTag, context], { timeoutMs: 300_000 })
  const buildStageId = (await podman.run(['image', 'inspect', '--format', '{{.Id}}', buildStageTag])).stdout.trim()
  if (previousBuildStage && previousBuildStage !== buildStageId) await podman.run(['rmi', previousBuildStage])
  const [image] = JSON.parse(await podman.must(['image', 'inspect', tag]))
  if (previous && previous !== image.Id) await podman.run(['rmi', previous])
  t.comment(`podman build: ${buildMs} ms; image ${(image.Size / 1e6).toFixed(0)} MB (base ${(await baseSize(podman, base.name) / 1e6).toFixed(0)} MB)`)

  const containers: string[] = []
  t.teardown(async () => { for (const name of containers) await podman.run(['rm', '--force', '--time', '0', name]) })
  /** `podman run` attached, with the hardening flags the issue and the manifests use. */
  function startContainer (env: Record<string, string>, extra: string[] = []) {
    const name = `svc-image-test-${randomBytes(4).toString('hex')}`
    containers.push(name)
    const args = ['run', '--name', name, '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', ...extra,
      ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), tag]
    const child = spawn('podman', args, { env: podman.env, stdio: ['ignore', 'pipe', 'pipe'] })
    const { lines, text } = collectLines<Record<string, any>>(child.stdout)
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    return { name, child, lines, stdout: text, stderr: () => stderr, exited }
  }

  t.test('the image carries its OCI labels, the numeric user, the HEALTHCHECK and node as its command', async (t) => {
    const labels: Record<string, string> = image.Labels ?? {}
    t.equal(labels['org.opencontainers.image.title'], pkg.name)
    t.equal(labels['org.opencontainers.image.description'], pkg.description)
    t.equal(labels['org.opencontainers.image.version'], pkg.version, 'the default VERSION is package.json\'s version')
    t.equal(labels['org.opencontainers.image.revision'], revision)
    t.equal(labels['org.opencontainers.image.created'], created)
    t.match(labels['org.opencontainers.image.source'], /^https:\/\//)
    t.equal(labels['org.opencontainers.image.base.name'], nodeImage)
    t.equal(image.Config.User, '1000:1000')
    t.same(image.Config.Cmd, ['node', 'dist/server.js'])
    t.equal(image.Config.StopSignal, 'SIGTERM')
    t.same(Object.keys(image.Config.ExposedPorts ?? {}), ['3000/tcp'])
    t.same(image.Healthcheck?.Test, ['CMD', ...execForm(instructions(runtime, 'HEALTHCHECK')[0]!.args)!], 'the HEALTHCHECK survived the build (docker format)')
    const env = Object.fromEntries((image.Config.Env as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))
    t.equal(env.ENVIRONMENT, 'production')
    t.equal(env.NODE_ENV, 'production')
    for (const name of Object.keys(env)) t.notMatch(name, /SECRET|PASSWORD|TOKEN|DATABASE_URL/, `no secret in the image's environment (${name})`)
  })

  t.test('neither the image nor its build stage holds what .dockerignore keeps out of the context', async (t) => {
    t.equal(buildStage.code, 0, 'the build stage builds alone')
    for (const [name, ref] of [['the image', tag], ['the build stage', buildStageTag]] as const) {
      const mount = (await podman.must(['image', 'mount', ref])).trim()
      const files = walk(join(mount, 'app'))
      await podman.run(['image', 'unmount', ref])
      t.ok(files.length > 100, `${files.length} files under /app in ${name}`)
      t.same(files.filter((f) => DECOYS.includes(f) || /^(\.data|\.git|coverage|\.tap|node_modules\/decoy-package)\//.test(f)), [], `no planted file reached ${name}`)
      t.same(files.filter((f) => !f.startsWith('node_modules/') && /(^|\/)(\.env(\..*)?|\.git\/?|\.data\/?|[^/]+\.pem)$/.test(f)), [], `no .env, .git, .data or key file in ${name}`)
      t.same(files.filter((f) => f.startsWith('test/') || f.startsWith('bench/')), [], `no tests or benchmarks in ${name}`)
    }
  })

  t.test('the image holds the compiled service and production dependencies only: no npm, dev dependencies, tests, .env or .git', async (t) => {
    const mount = (await podman.must(['image', 'mount', tag])).trim()
    t.teardown(() => podman.run(['image', 'unmount', tag]))
    const app = join(mount, 'app')
    t.same(readdirSync(app).sort(), ['dist', 'migrations', 'node_modules', 'package-lock.json', 'package.json'], 'nothing else in /app')
    const files = walk(app).filter((f) => !f.endsWith('/'))
    t.ok(files.length > 1000, `${files.length} files under /app`)
    // Dependencies may ship their own test fixtures (@fastify/env has a test/.env); none of ours.
    const envFiles = files.filter((f) => /(^|\/)\.env(\.|$)/.test(f))
    t.same(envFiles.filter((f) => !f.startsWith('node_modules/')), [], 'no .env file of the project')
    t.same(envFiles.filter((f) => readFileSync(join(app, f), 'utf8').includes(DECOY_MARKER)), [], 'none with the planted secret')
    t.same(files.filter((f) => /(^|\/)\.git(\/|$)/.test(f)), [], 'no .git')
    t.same(files.filter((f) => f.startsWith('dist/') && /(^|\/)test(\/|$)|\.test\.js$/.test(f)), [], 'no compiled tests')
    t.same(files.filter((f) => f.startsWith('dist/') && !/\.(js|js\.map)$/.test(f)), [], 'dist/ holds compiled JavaScript only (no TypeScript sources)')
    t.ok(existsSync(join(app, 'dist', 'server.js')), 'dist/server.js is there')

    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'))
    const devOnly = Object.entries<{ dev?: boolean }>(lock.packages).filter(([p, v]) => p.startsWith('node_modules/') && v.dev === true).map(([p]) => p)
    t.ok(devOnly.length > 50, `${devOnly.length} development-only packages in the lockfile`)
    t.same(devOnly.filter((p) => existsSync(join(app, p))), [], 'no development-only package is installed')
    for (const name of Object.keys(pkg.dependencies)) t.ok(existsSync(join(app, 'node_modules', name, 'package.json')), `${name} is installed`)

    const path = (image.Config.Env as string[]).find((e) => e.startsWith('PATH='))!.slice(5).split(':')
    for (const tool of ['npm', 'npx', 'corepack', 'yarn']) {
      t.same(path.filter((dir) => exists(join(mount, dir, tool))), [], `no ${tool} on the PATH`)
    }
    t.notOk(existsSync(join(mount, 'usr/local/lib/node_modules/npm')), 'npm\'s own files are gone')
    t.notOk(existsSync(join(mount, 'root/.npm')), 'the npm cache stayed in the build\'s cache mount')
    const appStat = statSync(join(app, 'dist'))
    t.equal(appStat.uid, 0, 'the code is owned by root')
    t.equal(appStat.mode & 0o022, 0, 'and not writable by anyone else')
  })

  t.test('without secrets the container refuses to start, listing every missing variable', async (t) => {
    const container = startContainer({})
    const code = await container.exited
    t.equal(code, 78, 'exit 78 (EX_CONFIG)')
    for (const name of ['SECRET_KEY', 'JWT_SECRET_KEY', 'DATABASE_URL']) t.match(container.stderr(), new RegExp(`- ${name}\\b`), `names ${name}`)
    t.notMatch(container.stdout(), /Server listening/, 'never listened')
  })

  t.test('with secrets and a database: non-root, no capabilities, migrates, serves, passes its HEALTHCHECK, and drains on SIGTERM under keep-alive load', async (t) => {
    const databaseUrl = await ownDatabase(t)
    const port = await freePort()
    // Host networking: the test's PostgreSQL listens on 127.0.0.1 only. HOST keeps the service there too.
    const container = startContainer({
      SECRET_KEY: randomBytes(32).toString('base64url'),
      JWT_SECRET_KEY: randomBytes(32).toString('base64url'),
      DATABASE_URL: databaseUrl,
      DATABASE_SSL: 'disable',
      HOST: '127.0.0.1',
      PORT: String(port),
      // The load below must meet the service, not its rate limiter.
      RATE_LIMIT_MAX: '1000000'
    }, ['--network', 'host'])
    const readyMs = await waitReady(port, container)
    t.comment(`container ready ${readyMs} ms after \`podman run\``)

    const inspect = JSON.parse(await podman.must(['inspect', container.name]))[0]
    t.equal(inspect.HostConfig.ReadonlyRootfs, true, 'read-only root filesystem')
    const status = readFileSync(`/proc/${inspect.State.Pid}/status`, 'utf8')
    const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(status)?.[1]?.trim().split(/\s+/)
    t.same(field('Uid'), ['1000', '1000', '1000', '1000'], 'runs as UID 1000 (real, effective, saved, filesystem)')
    t.same(field('Gid'), ['1000', '1000', '1000', '1000'], 'and GID 1000')
    t.same(field('CapEff'), ['0000000000000000'], 'no effective capability')
    t.same(field('CapBnd'), ['0000000000000000'], 'none it could gain')
    t.same(field('NoNewPrivs'), ['1'], 'no-new-privileges')
    t.equal(field('NSpid')?.at(-1), '1', 'node is PID 1 in the container')
    t.equal(readFileSync(`/proc/${inspect.State.Pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '), 'node dist/server.js')

    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`)
    t.same(await ready.json(), { status: 'ok', checks: { database: 'ok' } })
    t.ok(container.lines.some((l) => l.msg === 'database migrations applied'), 'migrated at start')
    const db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations WHERE version::int > 0 ORDER BY version')
    await db.end()
    const migrations = readdirSync(join(ROOT, 'migrations')).filter((f) => /^\d+\.do\..+\.sql$/.test(f))
    t.equal(rows.length, migrations.length, `${rows.length} migrations recorded in the database`)

    // A user's first minutes: register, log in, write a note, read it back.
    const base = `http://127.0.0.1:${port}`
    const credentials = { email: `image-${randomBytes(4).toString('hex')}@example.test`, password: 'a long enough password' }
    const registered = await post(`${base}/auth/register`, credentials)
    t.equal(registered.status, 201, 'registered')
    const login = await post(`${base}/auth/login`, credentials)
    t.equal(login.status, 200, 'logged in')
    const { access_token: token } = await login.json() as { access_token: string }
    const created = await post(`${base}/notes`, { title: 'from the container', body: 'hello' }, token)
    t.equal(created.status, 201, 'a note is created')
    const note = await created.json() as { id: string }
    const read = await fetch(`${base}/notes/${note.id}`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(read.status, 200)
    t.match(await read.json(), { id: note.id, title: 'from the container', body: 'hello' })
    t.match(read.headers.get('etag'), /^"/, 'with an ETag')

    const health = await podman.run(['healthcheck', 'run', container.name])
    t.equal(health.code, 0, `podman healthcheck run passes (stdout ${health.stdout.trim()})`)
    const after = JSON.parse(await podman.must(['inspect', container.name]))[0]
    t.equal(after.State.Health?.Status, 'healthy')

    // SIGTERM while 8 keep-alive connections send requests back to back. Each one
    // stops when a response tells it to close the connection (as a load balancer
    // stops using an endpoint that is going away); every request must succeed.
    const path = `/notes/${note.id}`
    const load = keepAliveLoad(port, path, { authorization: `Bearer ${token}` }, 8)
    await sleep(1500)
    const before = load.sent()
    t.ok(before > 50, `${before} requests before the signal`)
    const stopStarted = Date.now()
    const stop = podman.run(['stop', '--time', '20', container.name])
    await waitForLine(container.lines, (l) => l.msg === 'shutdown started')
    const draining = await fetch(`${base}/health/ready`)
    t.equal(draining.status, 503, 'readiness is 503 from the signal on')
    const results = await load.done
    const code = await container.exited
    await stop
    const stopMs = Date.now() - stopStarted
    t.same(results.failures, [], `no failed request (${results.ok} answered 200, ${results.ok - before} of them after the signal)`)
    t.equal(results.closedByServer, 8, 'each connection was told to close')
    t.equal(code, 0, 'the container exited 0')
    t.ok(stopMs < 10_000, `stopped ${stopMs} ms after SIGTERM, before the shutdown deadline (SHUTDOWN_TIMEOUT, 10 s) and the grace period`)
    t.ok(container.lines.some((l) => l.msg === 'shutdown complete'))
    t.notOk(container.lines.some((l) => Number(l.level) >= 50), 'no error logged')
    t.comment(`SIGTERM to exit under keep-alive load: ${stopMs} ms`)
    await t.rejects(fetch(`${base}/health/live`), 'nothing listens any more')
  })
}

/** The checkout's files (tracked and untracked, not git-ignored) in a fresh folder, with the decoys. */
async function stageContext (): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'svc-image-context-'))
  const listed = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT })
  if (listed.code !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`)
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue
    mkdirSync(dirname(join(dir, file)), { recursive: true })
    cpSync(join(ROOT, file), join(dir, file))
  }
  for (const decoy of DECOYS) {
    mkdirSync(dirname(join(dir, decoy)), { recursive: true })
    writeFileSync(join(dir, decoy), `SECRET_KEY=${DECOY_MARKER}\n`)
  }
  return dir
}

function exists (p: string): boolean {
  try { lstatSync(p); return true } catch { return false }
}

/** Every file below dir, relative to it. */
function walk (dir: string, prefix = ''): string[] {
  const out: string[] = []
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name
    if (entry.isDirectory()) {
      out.push(rel + '/')
      out.push(...walk(dir, rel))
    } else out.push(rel)
  }
  return out
}

async function baseSize (podman: Podman, name: string): Promise<number> {
  return Number((await podman.run(['image', 'inspect', '--format', '{{.Size}}', name])).stdout.trim())
}

/** A role with a password and a database it owns, on the test server: production refuses passwordless URLs. */
async function ownDatabase (test: Test): Promise<string> {
  const name = `image_${process.pid}_${randomBytes(4).toString('hex')}`
  const password = randomBytes(18).toString('base64url')
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  await admin.query(`CREATE ROLE ${admin.escapeIdentifier(name)} LOGIN PASSWORD ${admin.escapeLiteral(password)}`)
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} OWNER ${admin.escapeIdentifier(name)}`)
  await admin.end()
  test.teardown(async () => {
    const c = new pg.Client({ connectionString: ADMIN_URL })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)
    await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(name)}`)
    await c.end()
  })
  const url = new URL(ADMIN_URL)
  url.username = name
  url.password = password
  url.pathname = `/${name}`
  return url.toString()
}

async function waitReady (port: number, container: { exited: Promise<number | null>, stdout: () => string, stderr: () => string }, ms = 60_000): Promise<number> {
  const started = Date.now()
  let exited = false
  container.exited.then(() => { exited = true }, () => {})
  while (Date.now() - started < ms) {
    if (exited) throw new Error(`the container exited before it was ready:\n${container.stdout()}\n${container.stderr()}`)
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      if (res.status === 200) return Date.now() - started
    } catch {}
    await sleep(100)
  }
  throw new Error(`not ready within ${ms} ms:\n${container.stdout()}\n${container.stderr()}`)
}

async function waitForLine (lines: Array<Record<string, any>>, match: (l: Record<string, any>) => boolean, ms = 15_000): Promise<void> {
  const started = Date.now()
  while (!lines.some(match)) {
    if (Date.now() - started > ms) throw new Error('no matching log line')
    await sleep(20)
  }
}

function post (url: string, body: unknown, token?: string): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })
}

interface Outcome { status: number, headers: IncomingHttpHeaders }

function get (port: number, path: string, headers: Record<string, string>, agent: Agent): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** `connections` clients, each on its own keep-alive connection, until the server closes it. */
function keepAliveLoad (port: number, path: string, headers: Record<string, string>, connections: number) {
  let ok = 0
  let sent = 0
  let closedByServer = 0
  const failures: string[] = []
  const clients = Array.from({ length: connections }, async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      for (;;) {
        sent++
        let res: Outcome
        try {
          res = await get(port, path, headers, agent)
        } catch (err) {
          failures.push(`${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
          return
        }
        if (res.status === 200) ok++
        else failures.push(`status ${res.status}`)
        if (res.headers.connection === 'close') { closedByServer++; return }
      }
    } finally {
      agent.destroy()
    }
  })
  return { sent: () => sent, done: Promise.all(clients).then(() => ({ ok, failures, closedByServer })) }
}
