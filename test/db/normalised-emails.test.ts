import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import pg from 'pg'
import { migrationsDir, runMigrations } from '../../db/migrate.js'
import { normaliseEmail } from '../../lib/credentials.js'
import { hashPassword } from '../../lib/passwords.js'
import { build, createTestDatabase } from '../helper.js'

// Migration 010 (docs/auth.md, "Existing accounts"): emails stored by lower() are
// normalised as the service now does it; look-alikes that now collide keep their row,
// and the account that already held the email (else the oldest) keeps it.

/** A folder with the migrations before 010: a database as it was. */
function migrationsBefore (version: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'migrations-'))
  for (const file of readdirSync(migrationsDir())) {
    if (Number(file.split('.')[0]) < version) copyFileSync(join(migrationsDir(), file), join(dir, file))
  }
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('stored emails are normalised; of the accounts that now collide, the one holding the email, else the oldest, keeps it', async (t) => {
  const url = await createTestDatabase()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  await runMigrations(client, undefined, migrationsBefore(10))

  // What lower(btrim(...)) stored for what clients sent before.
  const legacy: Array<[string, string]> = [
    ['admin@x.co', '5 days'], // the real one
    ['ａｄｍｉｎ@x.co', '4 days'], // a full-width look-alike registered later
    ['ｃａｒｏｌ@x.co', '3 days'], // two look-alikes, neither normalised: the older wins
    ['ｃａｒｏl@x.co', '2 days'],
    ['jose\u0301e@x.co', '1 day'], // NFD, alone
    ['ｂｏｂ@x.co', '1 day'],
    ['plain@x.co', '1 day']
  ]
  for (const [email, age] of legacy) {
    await client.query('INSERT INTO users (email, password_hash, created_at) VALUES ($1, \'h\', now() - $2::interval)', [email, age])
  }
  const before = await client.query<{ id: string, email: string }>('SELECT id, email FROM users')
  const idOf = (email: string) => before.rows.find((r) => r.email === email)?.id

  t.ok(await runMigrations(client) > 0, 'migration 010 applies')
  const after = await client.query<{ id: string, email: string }>('SELECT id, email FROM users')
  const emailOf = (id: string | undefined) => after.rows.find((r) => r.id === id)?.email

  t.equal(emailOf(idOf('admin@x.co')), 'admin@x.co', 'the account already holding the email keeps it')
  t.equal(emailOf(idOf('ａｄｍｉｎ@x.co')), 'ａｄｍｉｎ@x.co', 'its look-alike is left as it was')
  t.equal(emailOf(idOf('ｃａｒｏｌ@x.co')), 'carol@x.co', 'the older of two look-alikes gets the email')
  t.equal(emailOf(idOf('ｃａｒｏl@x.co')), 'ｃａｒｏl@x.co')
  t.equal(emailOf(idOf('jose\u0301e@x.co')), 'jos\u00e9e@x.co', 'NFD is composed')
  t.equal(emailOf(idOf('ｂｏｂ@x.co')), 'bob@x.co', 'full-width becomes ASCII')
  t.equal(emailOf(idOf('plain@x.co')), 'plain@x.co')
  for (const row of after.rows) {
    if (row.email === normaliseEmail(row.email)) continue
    t.ok(['ａｄｍｉｎ@x.co', 'ｃａｒｏl@x.co'].includes(row.email), `only the losers of a collision stay unnormalised: ${row.email}`)
  }

  // The table no longer asks lower() (the collation) whether an email is normalised.
  const check = await client.query<{ def: string }>("SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'users_email_check'")
  t.notMatch(check.rows[0]?.def, /lower/)
  await t.rejects(client.query("INSERT INTO users (email, password_hash) VALUES (' padded@x.co', 'h')"), /users_email_check/, 'an untrimmed email is still refused')
})

t.test('after the migration, an account registered with a full-width email logs in with any spelling of it', async (t) => {
  const url = await createTestDatabase()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  await runMigrations(client, undefined, migrationsBefore(10))
  const password = 'a long enough password'
  // Registered before the change: lower(btrim()) kept the full-width letters.
  await client.query("INSERT INTO users (email, password_hash) VALUES ('ｄａｖｅ@x.co', $1)", [await hashPassword(password)])
  const app = await build(t, { env: { DATABASE_URL: url } }) // applies 010 and the rest at start
  for (const email of ['dave@x.co', 'ＤＡＶＥ@x.co', 'Dave@X.co']) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
    t.equal(res.statusCode, 200, email)
  }
})
