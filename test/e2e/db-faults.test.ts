import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../db/embedded-postgres.js'
import { build } from '../helper.js'

// A private PostgreSQL that this file stops and starts, so that the app meets a
// real outage (docs/contract.md, "Running it"): the shared test server must never be touched this way.

const dir = mkdtempSync(join(tmpdir(), 'db-faults-pg-'))
// Run as root, PostgreSQL runs as a `postgres` user, which must reach the folder.
chmodSync(dir, 0o755)
const port = await freePort()
const dataDir = join(dir, 'data')
// persistent: true so that a stop keeps the data for the restart; the folder is removed at the end.
const startDatabase = () => startEmbeddedPostgres({ dir: dataDir, port, database: 'app', persistent: true })
let database: EmbeddedDatabase = await startDatabase()
t.teardown(async () => {
  await database.stop()
  rmSync(dir, { recursive: true, force: true })
})

type Line = Record<string, unknown>

function routes (held: { release?: () => void }) {
  return function register (app: FastifyInstance): void {
    app.get('/test/db', async function db () {
      const { rows } = await app.pg.query<{ one: number }>('SELECT 1 AS one')
      return rows[0]
    })
    app.get('/test/transaction', async function transaction () {
      // Checked out between two statements, as a transaction around other work is.
      const client = await app.pg.connect()
      try {
        await client.query('BEGIN')
        await new Promise<void>((resolve) => { held.release = resolve })
        const { rows } = await client.query('SELECT 1 AS one')
        await client.query('COMMIT')
        return rows[0]
      } finally {
        client.release()
      }
    })
    app.get('/test/hold', async function hold () {
      const client = await app.pg.connect()
      await new Promise<void>((resolve) => { held.release = resolve })
      client.release()
      return { held: true }
    })
  }
}

async function timed<T> (fn: () => Promise<T>): Promise<[T, number]> {
  const started = Date.now()
  const result = await fn()
  return [result, Date.now() - started]
}

t.test('pg_terminate_backend of the pool\'s idle connections does not crash the process and the next query works', async (t) => {
  const logs: Line[] = []
  const app = await build(t, { routes: routes({}), logs, env: { DATABASE_URL: database.url, DATABASE_POOL_MAX: '4' } })
  // Fill the pool with idle clients.
  await Promise.all([1, 2, 3].map(() => app.pg.query('SELECT pg_sleep(0.05)')))
  t.ok(app.pg.pool.idleCount >= 2, `${app.pg.pool.idleCount} idle clients`)

  const admin = new pg.Client({ connectionString: database.adminUrl })
  await admin.connect()
  const { rowCount } = await admin.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'app' AND application_name = 'secure-fastify-service'")
  await admin.end()
  t.ok((rowCount ?? 0) >= 2, `${rowCount} backends terminated`)
  await sleep(200)

  t.ok(logs.some((l) => l.msg === 'idle PostgreSQL client lost; the pool will reconnect' && l.code === '57P01'), 'the loss is logged')
  const res = await app.inject({ url: '/test/db' })
  t.equal(res.statusCode, 200, 'the next query works')
  t.same(res.json(), { one: 1 })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
})

t.test('losing the backend of a client checked out between statements does not crash the process; the request gets 503', async (t) => {
  const held: { release?: () => void } = {}
  const app = await build(t, { routes: routes(held), env: { DATABASE_URL: database.url, DATABASE_POOL_MAX: '2' } })
  const transaction = app.inject({ url: '/test/transaction' })
  while (!held.release) await sleep(10)

  const admin = new pg.Client({ connectionString: database.adminUrl })
  await admin.connect()
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'app' AND application_name = 'secure-fastify-service'")
  await admin.end()
  await sleep(200)

  held.release()
  const res = await transaction
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'SERVICE_UNAVAILABLE')
  const next = await app.inject({ url: '/test/db' })
  t.equal(next.statusCode, 200, 'the pool replaced the broken client')
})

t.test('an exhausted pool answers 503 quickly instead of hanging', async (t) => {
  const held: { release?: () => void } = {}
  const app = await build(t, { routes: routes(held), env: { DATABASE_URL: database.url, DATABASE_POOL_MAX: '1' } })
  const holding = app.inject({ url: '/test/hold' })
  while (!held.release) await sleep(10)

  const [res, elapsed] = await timed(() => app.inject({ url: '/test/db', headers: { 'x-request-id': 'exhausted-1' } }))
  t.equal(res.statusCode, 503)
  t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', code: 'SERVICE_UNAVAILABLE', message: 'The database is unavailable; retry later', requestId: 'exhausted-1' })
  t.equal(res.headers['retry-after'], '1')
  t.ok(elapsed < 3000, `503 after ${elapsed} ms (connect timeout 2 s)`)
  t.comment(`exhausted pool: 503 in ${elapsed} ms`)

  const [ready, readyElapsed] = await timed(() => app.inject({ url: '/health/ready' }))
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'unavailable', checks: { database: 'error' } })
  t.ok(readyElapsed < 1500, `readiness answered in ${readyElapsed} ms`)

  held.release?.()
  t.equal((await holding).statusCode, 200)
  t.equal((await app.inject({ url: '/test/db' })).statusCode, 200, 'served again once the client is back')
})

t.test('database down: readiness 503, liveness 200, queries 503 fast; recovery without a restart', async (t) => {
  const logs: Line[] = []
  const app = await build(t, { routes: routes({}), logs, env: { DATABASE_URL: database.url } })
  t.equal((await app.inject({ url: '/test/db' })).statusCode, 200)

  await database.stop()

  const [ready, readyElapsed] = await timed(() => app.inject({ url: '/health/ready' }))
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'unavailable', checks: { database: 'error' } })
  t.ok(readyElapsed < 1500, `readiness 503 in ${readyElapsed} ms`)
  t.comment(`database down: readiness 503 in ${readyElapsed} ms`)

  const live = await app.inject({ url: '/health/live' })
  t.equal(live.statusCode, 200, 'liveness does not depend on the database')

  const [res, elapsed] = await timed(() => app.inject({ url: '/test/db', headers: { 'x-request-id': 'down-1' } }))
  t.equal(res.statusCode, 503)
  t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', code: 'SERVICE_UNAVAILABLE', message: 'The database is unavailable; retry later', requestId: 'down-1' })
  t.ok(elapsed < 5000, `query 503 in ${elapsed} ms`)
  t.comment(`database down: query 503 in ${elapsed} ms`)
  t.ok(logs.some((l) => l.msg === 'request completed' && l.reqId === 'down-1' && l.statusCode === 503), 'the refused query is logged as a 503')
  t.notOk(logs.some((l) => l.msg === 'request completed' && l.statusCode === 500), 'never a 500')

  database = await startDatabase()
  const recovered = Date.now()
  let status = 0
  while (Date.now() - recovered < 10_000) {
    status = (await app.inject({ url: '/test/db' })).statusCode
    if (status === 200) break
    await sleep(100)
  }
  t.equal(status, 200, `serves again ${Date.now() - recovered} ms after the database is back`)
  const readyAgain = await app.inject({ url: '/health/ready' })
  t.equal(readyAgain.statusCode, 200)
  t.same(readyAgain.json(), { status: 'ok', checks: { database: 'ok' } })
})

t.test('a database that accepts connections but never answers: 503 within the connect timeout, never a hang', async (t) => {
  // What a dropped route or a frozen server looks like from here.
  const sockets = new Set<Socket>()
  const blackhole = createServer((socket) => { sockets.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); blackhole.close() })
  const blackholePort = (blackhole.address() as { port: number }).port
  const app = await build(t, {
    routes: routes({}),
    env: { DATABASE_URL: `postgresql://app:pw@127.0.0.1:${blackholePort}/app`, MIGRATE_ON_START: 'false' }
  })
  const [res, elapsed] = await timed(() => app.inject({ url: '/test/db' }))
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'SERVICE_UNAVAILABLE')
  t.ok(elapsed < 5000, `503 in ${elapsed} ms`)
  t.comment(`unresponsive database: query 503 in ${elapsed} ms`)
  const [ready, readyElapsed] = await timed(() => app.inject({ url: '/health/ready' }))
  t.equal(ready.statusCode, 503)
  t.ok(readyElapsed < 1500, `readiness 503 in ${readyElapsed} ms`)
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200)
})

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
