import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, copies, execForm, finalStage, instructions, readDockerfile, stageEnv } from '../fixtures/deploy/dockerfile.js'

// Static checks of the image recipe. test/e2e/image.test.ts replays its final stage
// without an engine; test/e2e/image-podman.ts builds and runs it (npm run test:image).

const dockerfile = readDockerfile()
const runtime = finalStage(dockerfile)
const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
const runs = (stageName: string) => instructions(dockerfile.stages.find((s) => s.name === stageName)!, 'RUN').map((i) => i.args)

t.test('multi-stage: compiled in a build stage, production dependencies installed without scripts', async (t) => {
  t.ok(dockerfile.stages.length >= 2, 'more than one stage')
  const base = dockerfile.globalArgs.map((a) => /^NODE_IMAGE=(\S+)$/.exec(a.args)?.[1]).find(Boolean)
  t.match(base, /^node:(22|24)-slim(@sha256:[0-9a-f]{64})?$/, 'a current LTS slim base')
  for (const stage of dockerfile.stages) t.equal(stage.base, '$' + '{NODE_IMAGE}', `stage ${stage.name} uses the one base`)
  t.ok(runs('build').some((r) => /npm ci\b.*--ignore-scripts/.test(r)), 'the build installs without install scripts')
  t.ok(runs('build').some((r) => /tsc -p tsconfig\.build\.json/.test(r)), 'the build compiles with tsconfig.build.json')
  t.ok(runs('deps').some((r) => /npm ci\b.*--omit=dev\b.*--ignore-scripts/.test(r)), 'production dependencies only, no scripts')
  t.equal(instructions(runtime, 'ADD').length, 0, 'no ADD (no remote or archive sources)')
})

t.test('the runtime stage copies only package files, production node_modules, dist/ and migrations/', async (t) => {
  const got = copies(runtime).map((c) => `${c.from ?? 'context'}:${c.sources.join(',')}->${c.destination}`)
  t.same(got.sort(), [
    'build:/app/dist->./dist',
    'context:migrations->./migrations',
    'context:package.json,package-lock.json->./',
    'deps:/app/node_modules->./node_modules'
  ])
  t.equal(instructions(runtime, 'WORKDIR').at(-1)?.args, '/app')
})

t.test('the runtime runs as a numeric non-root user, after every install step', async (t) => {
  const users = instructions(runtime, 'USER')
  t.equal(users.length, 1)
  t.match(users[0]!.args, /^[1-9]\d*:[1-9]\d*$/, 'numeric UID:GID, not root, so runAsNonRoot can verify it')
  const lastWrite = Math.max(...runtime.instructions.filter((i) => i.keyword === 'RUN' || i.keyword === 'COPY').map((i) => i.line))
  t.ok(users[0]!.line > lastWrite, 'files stay owned by root: the process cannot rewrite its own code')
})

t.test('the image is production by default and listens on all interfaces', async (t) => {
  const env = stageEnv(runtime)
  t.equal(env.ENVIRONMENT, 'production', 'a container without secrets refuses to start')
  t.equal(env.NODE_ENV, 'production')
  t.equal(env.HOST, '0.0.0.0')
  t.equal(env.PORT, '3000')
  for (const name of Object.keys(env)) t.notMatch(name, /SECRET|PASSWORD|TOKEN|DATABASE_URL|REDIS_URL/, `no secret baked in (${name})`)
  for (const arg of dockerfile.stages.flatMap((s) => instructions(s, 'ARG'))) t.notMatch(arg.args, /SECRET|PASSWORD|TOKEN/, 'no secret build argument')
  t.equal(instructions(runtime, 'EXPOSE')[0]?.args, '3000')
})

t.test('node is the command, with a HEALTHCHECK that needs no curl', async (t) => {
  t.same(execForm(instructions(runtime, 'CMD').at(-1)!.args), ['node', 'dist/server.js'], 'exec form: node receives SIGTERM itself')
  t.equal(instructions(runtime, 'ENTRYPOINT').length, 0, 'no npm or shell in front of node')
  const health = instructions(runtime, 'HEALTHCHECK')
  t.equal(health.length, 1)
  const command = execForm(health[0]!.args)!
  t.equal(command[0], 'node')
  t.match(command.join(' '), '/health/live', 'liveness, never the database')
  t.match(health[0]!.args, /--timeout=\d+s/)
})

t.test('OCI labels describe the image', async (t) => {
  const labels = instructions(runtime, 'LABEL').map((l) => l.args).join(' ')
  for (const key of ['title', 'description', 'version', 'revision', 'created', 'source']) {
    t.match(labels, `org.opencontainers.image.${key}=`, `label ${key}`)
  }
})

t.test('.dockerignore keeps secrets, local data, build output and history out of the context', async (t) => {
  for (const entry of ['.env', '.env.*', '.data/', 'node_modules/', 'dist/', 'test/', 'bench/', '.git/', 'coverage/', '.tap/']) {
    t.ok(dockerignore.includes(entry), `ignores ${entry}`)
  }
  t.notOk(dockerignore.some((l) => l.startsWith('!')), 'no exceptions re-include anything')
  // What tsconfig.build.json compiles, and migrations/, must reach the build.
  const include: string[] = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')).include
  const needed = [...include.map((p) => p.split('/')[0]!).filter((p) => !p.includes('*')), 'migrations', 'package.json', 'package-lock.json', 'tsconfig.json']
  for (const dir of needed) {
    t.notOk(dockerignore.some((l) => l.replace(/\/$/, '') === dir), `${dir} reaches the build`)
  }
})
