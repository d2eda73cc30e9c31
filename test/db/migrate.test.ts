import { readdirSync } from 'node:fs'
import t, { type Test } from 'tap'
import pg from 'pg'
import { migrationsDir, runMigrations } from '../../db/migrate.js'
import { createTestDatabase } from '../helper.js'

const MIGRATIONS = readdirSync(migrationsDir()).filter((f) => /^\d+\.do\..+\.sql$/.test(f))

async function connect (t: Test, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  return client
}

t.test('replicas starting together apply each migration exactly once', async (t) => {
  t.ok(MIGRATIONS.length > 0, `${MIGRATIONS.length} migrations`)
  const url = await createTestDatabase()
  const clients = await Promise.all([1, 2, 3].map(() => connect(t, url)))
  const applied = await Promise.all(clients.map((c) => runMigrations(c)))
  t.equal(applied.reduce((a, b) => a + b, 0), MIGRATIONS.length, `applied counts ${applied.join(', ')} add up to one run`)
  t.equal(applied.filter((n) => n > 0).length, 1, 'one replica did the work, the others found nothing to do')

  const { rows } = await clients[0]!.query<{ version: string, count: string }>(
    'SELECT version::text, count(*)::text FROM schema_migrations WHERE version > 0 GROUP BY version ORDER BY version')
  t.equal(rows.length, MIGRATIONS.length, 'one row per migration')
  t.ok(rows.every((r) => r.count === '1'), 'no migration recorded twice')
  const users = await clients[0]!.query("SELECT to_regclass('public.users') AS t")
  t.equal(users.rows[0].t, 'users')

  const locks = await clients[0]!.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
  t.equal(locks.rows[0].n, 0, 'the advisory lock is released')
})

t.test('running the migrations again is a no-op', async (t) => {
  const url = await createTestDatabase()
  const client = await connect(t, url)
  t.equal(await runMigrations(client), MIGRATIONS.length)
  const before = await client.query('SELECT version, run_at FROM schema_migrations ORDER BY version')
  t.equal(await runMigrations(client), 0)
  t.equal(await runMigrations(client), 0)
  const after = await client.query('SELECT version, run_at FROM schema_migrations ORDER BY version')
  t.same(after.rows, before.rows, 'nothing recorded again')
})
