import t from 'tap'
import { cli } from '../fixtures/clients-cli.js'
import { build, createTestDatabase, injectAs, testDatabaseUrl } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY } from '../fixtures/jwt.js'

// `npm run clients -- ...` is `node dist/scripts/clients.js ...`: run exactly that,
// with the service's environment variables and no .env file (an empty folder).

const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY }

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString()
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

t.test('the clients command', async (t) => {
  const databaseUrl = await testDatabaseUrl()
  const env = { ENVIRONMENT: 'test', DATABASE_URL: databaseUrl, ...ENV }
  const app = await build(t, { env: ENV })

  t.test('create prints one JSON line with the secret, accepting scopes separated by spaces or commas', async (t) => {
    const run = await cli(['create', '--name', 'billing', '--scopes', 'notes:read, notes:write  notes:read'], env)
    t.equal(run.code, 0, run.stderr)
    t.equal(run.stderr, '')
    t.equal(run.lines.length, 1)
    const created = run.lines[0] as { client_id: string, client_secret: string, name: string, scopes: string[] }
    t.same(Object.keys(created).sort(), ['client_id', 'client_secret', 'name', 'scopes'])
    t.equal(created.name, 'billing')
    t.same(created.scopes, ['notes:read', 'notes:write'])
    t.ok(created.client_secret.length >= 40, 'a long random secret')

    const { rows } = await app.pg.query('SELECT secret_hash FROM clients WHERE id = $1', [created.client_id])
    t.match(rows[0].secret_hash, /^\$argon2id\$/, 'only a hash is stored')
    t.notOk((rows[0].secret_hash as string).includes(created.client_secret))

    const token = await app.inject({
      method: 'POST',
      url: '/auth/token',
      payload: form({ grant_type: 'client_credentials' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(created.client_id, created.client_secret) }
    })
    t.equal(token.statusCode, 200, 'the printed secret works at /auth/token')
    t.equal(token.json().scope, 'notes:read notes:write')
  })

  t.test('list prints one JSON line per client, without secrets', async (t) => {
    await cli(['create', '--name', 'reporting', '--scopes', 'notes:read'], env)
    const run = await cli(['list'], env)
    t.equal(run.code, 0, run.stderr)
    t.ok(run.lines.length >= 2)
    for (const line of run.lines) {
      t.same(Object.keys(line).sort(), ['auth_method', 'client_id', 'created_at', 'disabled_at', 'name', 'scopes'])
      t.equal(line.auth_method, 'client_secret', 'each line says how the client authenticates')
    }
    // auth_method "client_secret" names the method; no secret or hash is printed.
    t.notOk(run.stdout.includes('"client_secret":') || run.stdout.includes('secret_hash') || run.stdout.includes('$argon2'), 'no secret or hash')
    t.ok(run.lines.some((l) => l.name === 'reporting'))
  })

  t.test('disable revokes the client\'s tokens on a running replica and refuses new ones', async (t) => {
    const created = (await cli(['create', '--name', 'to-disable', '--scopes', 'notes:read'], env)).lines[0] as { client_id: string, client_secret: string }
    const issued = await app.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { grant_type: 'client_credentials', client_id: created.client_id, client_secret: created.client_secret }
    })
    const token = issued.json().access_token as string
    t.equal((await injectAs(app, token, { method: 'GET', url: '/auth/me' })).statusCode, 200)

    const run = await cli(['disable', created.client_id], env)
    const done = Date.now()
    t.equal(run.code, 0, run.stderr)
    t.equal(run.lines[0]?.client_id, created.client_id)
    t.equal(run.lines.length, 1, 'stdout holds the result only')
    const events = run.stderr.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
    t.match(events, [{ level: 30, event: 'client.disabled', clientId: created.client_id, by: 'cli', msg: 'client.disabled' }], 'a security event, on stderr')
    t.notOk(run.stderr.includes(created.client_secret))
    let res = await injectAs(app, token, { method: 'GET', url: '/auth/me' })
    while (res.statusCode === 200 && Date.now() - done < 2000) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      res = await injectAs(app, token, { method: 'GET', url: '/auth/me' })
    }
    t.equal(res.json().code, 'AUTH_TOKEN_REVOKED')
    t.ok(Date.now() - done < 1000, `refused within ${Date.now() - done} ms of the command's exit`)
    const again = await app.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { grant_type: 'client_credentials', client_id: created.client_id, client_secret: created.client_secret }
    })
    t.equal(again.json().error, 'invalid_client')
    const listed = (await cli(['list'], env)).lines.find((l) => l.client_id === created.client_id)
    t.type(listed?.disabled_at, 'string')
    t.equal((await cli(['create', '--name', 'to-disable', '--scopes', 'notes:read'], env)).code, 0, 'a disabled client\'s name is free again')
  })

  t.test('exits non-zero with a message on stderr for bad usage', async (t) => {
    const cases: Array<[string[], number, RegExp]> = [
      [[], 2, /missing command/],
      [['frobnicate'], 2, /unknown command/],
      [['create', '--scopes', 'notes:read'], 2, /--name/],
      [['create', '--name', 'x'], 2, /--scopes/],
      [['create', '--name', 'x', '--scopes', 'notes"read'], 2, /scope/],
      [['create', '--name', '', '--scopes', 'notes:read'], 2, /--name/],
      [['create', '--name', '-bad', '--scopes', 'notes:read'], 2, /./],
      [['create', '--name', 'x', '--scopes', 'a', '--admin'], 2, /admin/],
      [['list', 'extra'], 2, /no arguments/],
      [['disable'], 2, /CLIENT_ID/],
      [['disable', 'not-a-uuid'], 1, /no client/],
      [['disable', '00000000-0000-4000-8000-000000000000'], 1, /no client/],
      [['create', '--name', 'billing', '--scopes', 'notes:read'], 1, /already exists/]
    ]
    for (const [args, code, message] of cases) {
      const run = await cli(args, env)
      t.equal(run.code, code, `${args.join(' ')} → exit ${code}`)
      t.match(run.stderr, message)
      t.equal(run.stdout, '', 'nothing on stdout')
    }
  })

  t.test('refuses a bad configuration like the server does', async (t) => {
    const run = await cli(['list'], { ENVIRONMENT: 'production', DATABASE_URL: databaseUrl })
    t.not(run.code, 0)
    t.match(run.stderr, /SECRET_KEY/)
    t.equal(run.stdout, '')
  })

  t.test('migrates a new database before its first command', async (t) => {
    const fresh = await createTestDatabase()
    const run = await cli(['list'], { ENVIRONMENT: 'test', DATABASE_URL: fresh })
    t.equal(run.code, 0, run.stderr)
    t.equal(run.stdout, '')
    const created = await cli(['create', '--name', 'first', '--scopes', 'notes:read'], { ENVIRONMENT: 'test', DATABASE_URL: fresh })
    t.equal(created.code, 0, created.stderr)
  })
})
