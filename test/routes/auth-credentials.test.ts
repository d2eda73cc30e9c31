import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { ADMIN_URL, build, productionEnv } from '../helper.js'

// Credentials compared as entered, never collapsed (docs/auth.md, "Emails and
// passwords as entered"), over HTTP: register and login as a client would.

const PASSWORD = 'a long enough password'

function post (app: FastifyInstance, url: string, payload: object) {
  return app.inject({ method: 'POST', url, payload })
}

function unique (local: string): string {
  return `${local}@${randomBytes(4).toString('hex')}.test`
}

t.test('lone surrogates never make different passwords one hash', async (t) => {
  const app = await build(t)
  // Each lone surrogate used to reach argon2 as U+FFFD: "\ud800"×12, "\udc00"×12 and
  // "\ufffd"×12 were one password.
  const email = unique('fffd')
  t.equal((await post(app, '/auth/register', { email, password: '\ufffd'.repeat(12) })).statusCode, 201, 'U+FFFD itself is a password like any other')
  for (const lone of ['\ud800', '\udc00']) {
    const login = await post(app, '/auth/login', { email, password: lone.repeat(12) })
    t.equal(login.statusCode, 400, `login with ${escape(lone)}×12 is refused, never verified against the U+FFFD hash`)
    t.equal(login.json().code, 'VALIDATION_ERROR')
    const register = await post(app, '/auth/register', { email: unique('lone'), password: lone.repeat(12) })
    t.equal(register.statusCode, 400, `register with ${escape(lone)}×12 is refused`)
  }
  t.equal((await post(app, '/auth/login', { email, password: '\ufffd'.repeat(12) })).statusCode, 200)
  // Emails that differed only in a lone surrogate collided the same way.
  const domain = `${randomBytes(4).toString('hex')}.test`
  for (const email of [`\ud800x@${domain}`, `\udbffx@${domain}`]) {
    const res = await post(app, '/auth/register', { email, password: PASSWORD })
    t.equal(res.statusCode, 400, `${escape(email)} is refused, not stored as U+FFFD`)
  }
})

t.test('look-alike emails are one account: full-width, upper case, NFC and NFD', async (t) => {
  const app = await build(t)
  const domain = `${randomBytes(4).toString('hex')}.test`
  const registered = await post(app, '/auth/register', { email: `admin@${domain}`, password: PASSWORD })
  t.equal(registered.statusCode, 201)
  const id = registered.json().id
  for (const email of [`ａｄｍｉｎ@${domain}`, `ADMIN@${domain}`, ` Admin@${domain.toUpperCase()} `]) {
    const again = await post(app, '/auth/register', { email, password: PASSWORD })
    t.equal(again.statusCode, 409, `${email}: the same account, so a conflict`)
    const login = await post(app, '/auth/login', { email, password: PASSWORD })
    t.equal(login.statusCode, 200, `${email} logs in`)
    const me = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${login.json().access_token}` } })
    t.equal(me.json().id, id, `${email} is the account of admin@${domain}`)
  }

  const nfd = `jose\u0301e@${domain}`
  const josee = await post(app, '/auth/register', { email: nfd, password: PASSWORD })
  t.equal(josee.statusCode, 201)
  t.equal(josee.json().email, `jos\u00e9e@${domain}`, 'stored in its normalised (composed) form')
  t.equal((await post(app, '/auth/register', { email: `jos\u00e9e@${domain}`, password: PASSWORD })).statusCode, 409, 'the NFC spelling is that account')
  t.equal((await post(app, '/auth/login', { email: `jos\u00e9e@${domain}`, password: PASSWORD })).statusCode, 200)
  t.equal((await post(app, '/auth/login', { email: nfd, password: PASSWORD })).statusCode, 200)
})

t.test('invisible characters in an email are refused, before any password is hashed', async (t) => {
  const logs: object[] = []
  const app = await build(t, { env: await productionEnv(), logs })
  for (const [label, email] of [
    ['a zero-width space', `ad\u200bmin@${randomBytes(4).toString('hex')}.test`],
    ['a word joiner', `ad\u2060min@${randomBytes(4).toString('hex')}.test`],
    ['NUL', `a\u0000b@${randomBytes(4).toString('hex')}.test`]
  ]) {
    for (const url of ['/auth/register', '/auth/login']) {
      const res = await post(app, url, { email, password: PASSWORD })
      t.equal(res.statusCode, 400, `${url}, ${label}`)
      t.equal(res.json().code, 'VALIDATION_ERROR')
    }
  }
  t.same(logs.filter((l) => (l as { level: number }).level >= 50), [], 'no error line: the database never saw them')
})

/** A database whose collation lower-cases ASCII only, as PostgreSQL's C locale does. */
async function cLocaleDatabase (t: Test): Promise<string> {
  const name = `test_c_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`)
  await admin.end()
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: ADMIN_URL })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)
    await c.end()
  })
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

t.test('emails are lower-cased by the service, whatever the database\'s collation', async (t) => {
  const app = await build(t, { env: { DATABASE_URL: await cLocaleDatabase(t) } })
  const check = await app.pg.query<{ lowered: string }>("SELECT lower('ÉLODIE') AS lowered")
  t.equal(check.rows[0]?.lowered, 'Élodie', 'this database\'s lower() leaves É as it is')
  const domain = `${randomBytes(4).toString('hex')}.test`
  const res = await post(app, '/auth/register', { email: `ÉLODIE@${domain}`, password: PASSWORD })
  t.equal(res.statusCode, 201)
  t.equal(res.json().email, `élodie@${domain}`)
  t.equal((await post(app, '/auth/login', { email: `élodie@${domain}`, password: PASSWORD })).statusCode, 200)
  t.equal((await post(app, '/auth/register', { email: `élodie@${domain}`, password: PASSWORD })).statusCode, 409)
})
