import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { productionEnv, testDatabaseUrl } from '../helper.js'
import { spawnServer } from '../fixtures/spawn.js'

// The real entry point (node dist/server.js), as the container runs it: a bad
// configuration must stop it before it listens, with one message on stderr.

t.test('production refuses to start without SECRET_KEY, JWT_SECRET_KEY and a database URL, with one message naming all three', async (t) => {
  const started = Date.now()
  const server = spawnServer(t, { ENVIRONMENT: 'production', PORT: '0' })
  const { code } = await server.exited
  t.not(code, 0, 'exit code is non-zero')
  t.equal(code, 78, 'EX_CONFIG')
  const stderr = server.stderr()
  t.equal(stderr.match(/Refusing to start/g)?.length, 1, 'one message')
  t.match(stderr, /- SECRET_KEY is required/)
  t.match(stderr, /- JWT_SECRET_KEY is required/)
  t.match(stderr, /- DATABASE_URL \(or SQLALCHEMY_DATABASE_URI\) is required/)
  t.notMatch(server.stdout(), /Server listening/, 'never listened')
  t.ok(Date.now() - started < 10_000)
})

t.test('the refusal lists every problem and never the values', async (t) => {
  const canary = `canary-${randomBytes(6).toString('hex')}`
  const server = spawnServer(t, {
    ENVIRONMENT: 'production',
    SECRET_KEY: canary,
    JWT_SECRET_KEY: canary,
    DATABASE_URL: `postgresql://${canary}:postgres@${canary}.internal/app`,
    PORT: canary,
    CORS_ORIGINS: '*',
    JWT_TOKEN_LOCATION: 'cookies'
  })
  const { code } = await server.exited
  t.equal(code, 78)
  const output = server.stderr() + server.stdout()
  t.notOk(output.includes(canary), 'no value in the output')
  for (const name of ['SECRET_KEY must be at least 32', 'JWT_SECRET_KEY must be at least 32', 'SECRET_KEY and JWT_SECRET_KEY must differ',
    'DATABASE_URL has an empty or well-known password', 'PORT ', 'CORS_ORIGINS must not hold *']) {
    t.ok(output.includes(`- ${name}`), name)
  }
})

t.test('an ENVIRONMENT outside the allowed set refuses to start', async (t) => {
  const server = spawnServer(t, { ENVIRONMENT: 'staging', PORT: '0', DATABASE_URL: await testDatabaseUrl() })
  const { code } = await server.exited
  t.equal(code, 78)
  t.match(server.stderr(), /ENVIRONMENT must be one of development, test, production/)
  t.notMatch(server.stdout(), /Server listening/)
})

t.test('production with good secrets (given as files) serves /health/ready and warns that database SSL is disabled', async (t) => {
  const env = await productionEnv()
  const dir = mkdtempSync(join(tmpdir(), 'secrets-'))
  writeFileSync(join(dir, 'secret_key'), `${env.SECRET_KEY}\n`)
  writeFileSync(join(dir, 'jwt_secret_key'), `${env.JWT_SECRET_KEY}\n`)
  // sslmode in the URL, not DATABASE_SSL: the warning must see it too.
  const url = new URL(env.DATABASE_URL as string)
  url.searchParams.set('sslmode', 'disable')
  const server = spawnServer(t, {
    ENVIRONMENT: 'production',
    SECRET_KEY_FILE: join(dir, 'secret_key'),
    JWT_SECRET_KEY_FILE: join(dir, 'jwt_secret_key'),
    DATABASE_URL: url.toString(),
    HOST: '127.0.0.1',
    PORT: '0',
    SHUTDOWN_DRAIN_DELAY: '0'
  })
  const port = await server.port()
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`)
  t.equal(res.status, 200)
  t.same(await res.json(), { status: 'ok', checks: { database: 'ok' } })
  const warnings = server.lines.filter((l) => l.level === 40 && /SSL is disabled in production/.test(String(l.msg)))
  t.equal(warnings.length, 1, 'one warning about database SSL')
  t.notOk(server.lines.some((l) => /insecure development defaults/.test(String(l.msg))))
  t.notOk(server.stdout().includes(env.SECRET_KEY as string), 'secrets never logged')
  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0)
})

t.test('production with DATABASE_SSL=disable also warns', async (t) => {
  const server = spawnServer(t, { ...await productionEnv({ DATABASE_SSL: 'disable' }), PORT: '0', SHUTDOWN_DRAIN_DELAY: '0' })
  const port = await server.port()
  t.equal((await fetch(`http://127.0.0.1:${port}/health/ready`)).status, 200)
  t.equal(server.lines.filter((l) => /SSL is disabled in production/.test(String(l.msg))).length, 1)
  server.child.kill('SIGTERM')
  await server.exited
})

t.test('development starts with the defaults and logs exactly one insecure-defaults warning line', async (t) => {
  const server = spawnServer(t, { DATABASE_URL: await testDatabaseUrl(), PORT: '0' })
  const port = await server.port()
  t.equal((await fetch(`http://127.0.0.1:${port}/health/live`)).status, 200)
  const warnings = server.lines.filter((l) => /insecure/i.test(JSON.stringify(l)))
  t.equal(warnings.length, 1)
  t.equal(warnings[0]?.level, 40, 'at warn level')
  t.match(String(warnings[0]?.msg), /insecure development defaults are in use \(ENVIRONMENT=development\)/)
  server.child.kill('SIGTERM')
  await server.exited
})

t.test('a database unreachable at start stops the process before it listens, without logging the password', async (t) => {
  const env = await productionEnv({ DATABASE_URL: 'postgresql://app:a-canary-db-password-123@127.0.0.1:1/app' })
  const server = spawnServer(t, { ...env, PORT: '0', SHUTDOWN_DRAIN_DELAY: '0' })
  const { code } = await server.exited
  t.not(code, 0)
  t.notMatch(server.stdout(), /Server listening/)
  t.ok(server.lines.some((l) => l.level === 60 && l.msg === 'failed to start'), 'a fatal line says why')
  t.notOk((server.stdout() + server.stderr()).includes('a-canary-db-password-123'), 'no password in the output')
})
