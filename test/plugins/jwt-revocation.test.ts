import pg from 'pg'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { ADMIN_URL, build, createServiceClient, clientToken, injectAs, loginAs } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY } from '../fixtures/jwt.js'

// Revocation across replicas (docs/contract.md, "Tokens"): two apps on one database stand for two
// replicas; a revocation made on one must be refused by the other within 1 s, with
// no database query per authenticated request.

const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY }

function testRoutes (app: FastifyInstance): void {
  app.get('/test/whoami', { preParsing: app.authenticate }, async (request) => request.principal)
}

/** Milliseconds until `app` refuses `token` as revoked, polling every 10 ms (at most `limit`). */
async function timeUntilRevoked (app: FastifyInstance, token: string, since: number, limit = 3000): Promise<number> {
  for (;;) {
    const res = await injectAs(app, token, { method: 'GET', url: '/test/whoami' })
    if (res.statusCode === 401 && res.json().code === 'AUTH_TOKEN_REVOKED') return Date.now() - since
    if (res.statusCode !== 200) throw new Error(`unexpected ${res.statusCode}: ${res.body}`)
    if (Date.now() - since > limit) return Number.POSITIVE_INFINITY
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('two replicas on one database', async (t) => {
  const a = await build(t, { env: ENV, routes: testRoutes })
  const b = await build(t, { env: ENV, routes: testRoutes })

  t.test('a logout on one replica is refused by the other within 1 s', async (t) => {
    const user = await loginAs(a)
    t.equal((await injectAs(b, user.accessToken, { method: 'GET', url: '/test/whoami' })).statusCode, 200)
    const start = Date.now()
    t.equal((await injectAs(a, user.accessToken, { method: 'POST', url: '/auth/logout' })).statusCode, 204)
    const elapsed = await timeUntilRevoked(b, user.accessToken, start)
    t.comment(`replica B refused the token ${elapsed} ms after the logout began`)
    t.ok(elapsed < 1000, `refused within ${elapsed} ms`)
  })

  t.test('a refresh-token reuse on one replica revokes the session on the other', async (t) => {
    const user = await loginAs(a)
    const first = await a.inject({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${user.refreshToken}` } })
    t.equal(first.statusCode, 200)
    const start = Date.now()
    const reuse = await a.inject({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${user.refreshToken}` } })
    t.equal(reuse.json().code, 'AUTH_TOKEN_REVOKED')
    const elapsed = await timeUntilRevoked(b, first.json().access_token, start)
    t.ok(elapsed < 1000, `refused within ${elapsed} ms`)
  })

  t.test('disabling a client is refused by every replica within 1 s', async (t) => {
    const client = await createServiceClient(a, { scopes: ['notes:read'] })
    const token = await clientToken(a, { clientId: client.clientId })
    t.equal((await injectAs(b, token, { method: 'GET', url: '/test/whoami' })).statusCode, 200)
    const start = Date.now()
    await a.repos.clients.disable(client.clientId)
    const [ea, eb] = await Promise.all([timeUntilRevoked(a, token, start), timeUntilRevoked(b, token, start)])
    t.ok(ea < 1000 && eb < 1000, `refused within ${ea} and ${eb} ms`)
  })

  t.test('a replica that starts later loads the revocations at once', async (t) => {
    const user = await loginAs(a)
    await a.repos.sessions.revoke(user.sessionId, 'admin')
    const c = await build(t, { env: ENV, routes: testRoutes })
    const res = await injectAs(c, user.accessToken, { method: 'GET', url: '/test/whoami' })
    t.equal(res.json().code, 'AUTH_TOKEN_REVOKED')
    t.ok(c.revocation.size >= 1)
  })

  t.test('the revocation cache size counts revoked sessions and disabled clients', async (t) => {
    const before = b.revocation.size
    const user = await loginAs(a)
    await injectAs(a, user.accessToken, { method: 'POST', url: '/auth/logout' })
    await timeUntilRevoked(b, user.accessToken, Date.now())
    t.equal(b.revocation.size, before + 1)
  })

  t.test('authenticating costs no database query', async (t) => {
    const user = await loginAs(b)
    const token = await clientToken(b, { scopes: ['notes:read'] })
    const pool = b.pg.pool
    const connect = pool.connect.bind(pool)
    let checkouts = 0
    // pg's pool.query checks a client out through connect(): counting it counts every query.
    pool.connect = ((...args: unknown[]) => { checkouts++; return (connect as (...a: unknown[]) => unknown)(...args) }) as typeof pool.connect
    t.teardown(() => { pool.connect = connect })
    for (let i = 0; i < 25; i++) {
      t.equal((await injectAs(b, user.accessToken, { method: 'GET', url: '/test/whoami' })).statusCode, 200)
      t.equal((await injectAs(b, token, { method: 'GET', url: '/test/whoami' })).statusCode, 200)
    }
    t.equal(checkouts, 0, 'no pool checkout for 50 authenticated requests')
    await injectAs(b, user.accessToken, { method: 'GET', url: '/auth/me' })
    t.ok(checkouts > 0, 'the counter does count queries (GET /auth/me reads the user)')
  })

  t.test('ignores malformed notifications from other database users', async (t) => {
    const before = b.revocation.size
    for (const payload of ['garbage', '{"t":"session","id":"not-a-uuid","exp":1}', '{"t":"other","id":"00000000-0000-4000-8000-000000000000"}', '[]', 'null', '{"t":"session","id":"00000000-0000-4000-8000-000000000000"}']) {
      await a.pg.query('SELECT pg_notify($1, $2)', ['auth_revocation', payload])
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.equal(b.revocation.size, before)
    const user = await loginAs(b)
    t.equal((await injectAs(b, user.accessToken, { method: 'GET', url: '/test/whoami' })).statusCode, 200)
  })

  t.test('a lost listener reconnects and picks up what it missed', async (t) => {
    const user = await loginAs(a)
    // In one statement batch: kill every listener of this database, then revoke the
    // session without a NOTIFY, so only the resynchronisation after reconnecting can
    // tell the replicas (the reconnect waits at least 50 ms, the batch takes far less).
    const start = Date.now()
    await a.pg.query(`
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'secure-fastify-service:revocation';
      UPDATE sessions SET revoked_at = now(), revoked_reason = 'admin' WHERE id = '${user.sessionId}';
    `)
    const [ea, eb] = await Promise.all([timeUntilRevoked(a, user.accessToken, start), timeUntilRevoked(b, user.accessToken, start)])
    t.comment(`resynchronised after ${ea} and ${eb} ms`)
    t.ok(ea < 2000 && eb < 2000, 'both replicas reconnected and resynchronised')
    t.ok(a.revocation.current && b.revocation.current)
    const { rows } = await a.pg.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'secure-fastify-service:revocation'")
    t.ok(rows[0].n >= 2, 'the listeners are back')
    // And notifications flow again.
    const other = await loginAs(a)
    const again = Date.now()
    await injectAs(a, other.accessToken, { method: 'POST', url: '/auth/logout' })
    t.ok(await timeUntilRevoked(b, other.accessToken, again) < 1000)
  })
})

t.test('fails closed (503) while revocations cannot be kept current, and recovers by itself', async (t) => {
  const app = await build(t, { env: ENV, routes: testRoutes })
  const user = await loginAs(app)
  const { rows } = await app.pg.query<{ db: string }>('SELECT current_database() AS db')
  const database = rows[0]?.db as string
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  const allow = (yes: boolean) => admin.query(`ALTER DATABASE ${admin.escapeIdentifier(database)} ALLOW_CONNECTIONS ${yes}`)
  t.teardown(async () => {
    await allow(true).catch(() => {})
    await admin.end()
  })

  // New connections to the database are refused (even a superuser's); the pool keeps
  // its open ones, but the listener, once killed, cannot come back.
  await allow(false)
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'secure-fastify-service:revocation'", [database])
  const lost = Date.now()
  const whoami = () => injectAs(app, user.accessToken, { method: 'GET', url: '/test/whoami' })
  t.equal((await whoami()).statusCode, 200, 'a short outage is tolerated')
  let res = await whoami()
  while (res.statusCode === 200 && Date.now() - lost < 8000) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    res = await whoami()
  }
  t.equal(res.statusCode, 503, `503 after ${Date.now() - lost} ms without a listener`)
  t.equal(res.json().code, 'SERVICE_UNAVAILABLE')
  t.ok(Date.now() - lost >= 4900, 'not before the 5 s grace')

  await allow(true)
  const back = Date.now()
  while (res.statusCode !== 200 && Date.now() - back < 10_000) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    res = await whoami()
  }
  t.equal(res.statusCode, 200, `serving again ${Date.now() - back} ms after the database accepts connections`)
})
