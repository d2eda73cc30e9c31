import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, clientToken, injectAs, loginAs, registerUser, TEST_PASSWORD } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY, decode } from '../fixtures/jwt.js'
import { USER_SCOPES } from '../../schemas/auth.js'

// Accounts (docs/contract.md, "Accounts"): register, login, refresh with rotation and reuse detection,
// logout, me; and every kind of bad input getting the common error shape.

const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY }

function post (app: FastifyInstance, url: string, payload: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, payload: payload as object, headers })
}

function errorShape (t: Test, res: LightMyRequestResponse, statusCode: number, code: string): void {
  t.equal(res.statusCode, statusCode, res.body)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'requestId', 'statusCode'])
  t.equal(body.statusCode, statusCode)
  t.equal(body.code, code)
  t.equal(body.requestId, res.headers['x-request-id'])
}

let counter = 0
const freshEmail = () => `person-${process.pid}-${++counter}@example.test`

t.test('POST /auth/register', async (t) => {
  const app = await build(t, { env: ENV })

  t.test('creates an account with a normalised email and answers 201 {id, email, created_at}', async (t) => {
    const res = await post(app, '/auth/register', { email: '  Mixed.Case@Example.TEST ', password: 'a long enough password' })
    t.equal(res.statusCode, 201)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['created_at', 'email', 'id'])
    t.equal(body.email, 'mixed.case@example.test')
    t.match(body.id, /^[0-9a-f-]{36}$/)
    t.ok(!Number.isNaN(Date.parse(body.created_at)))
    t.equal(res.headers['cache-control'], 'no-store')
  })

  t.test('refuses a duplicate email, whatever its case or spaces, with 409 CONFLICT', async (t) => {
    const email = freshEmail()
    t.equal((await post(app, '/auth/register', { email, password: TEST_PASSWORD })).statusCode, 201)
    errorShape(t, await post(app, '/auth/register', { email: ` ${email.toUpperCase()} `, password: 'another password entirely' }), 409, 'CONFLICT')
  })

  t.test('stores an argon2id hash with t=2, m=19456 KiB, p=1, never the password', async (t) => {
    const email = freshEmail()
    await post(app, '/auth/register', { email, password: TEST_PASSWORD })
    const { rows } = await app.pg.query('SELECT password_hash FROM users WHERE email = $1', [email])
    const [, type, version, params] = (rows[0].password_hash as string).split('$')
    t.equal(type, 'argon2id')
    t.equal(version, 'v=19')
    t.same(Object.fromEntries((params ?? '').split(',').map((kv) => kv.split('='))), { m: '19456', t: '2', p: '1' })
    t.notMatch(rows[0].password_hash, TEST_PASSWORD)
  })

  t.test('counts password length in code points: 12 to 128', async (t) => {
    const emoji = '\u{1F600}'
    t.equal((await post(app, '/auth/register', { email: freshEmail(), password: emoji.repeat(12) })).statusCode, 201, '12 emoji (24 UTF-16 units)')
    t.equal((await post(app, '/auth/register', { email: freshEmail(), password: emoji.repeat(128) })).statusCode, 201, '128 emoji')
    errorShape(t, await post(app, '/auth/register', { email: freshEmail(), password: emoji.repeat(11) }), 400, 'VALIDATION_ERROR')
    errorShape(t, await post(app, '/auth/register', { email: freshEmail(), password: 'x'.repeat(129) }), 400, 'VALIDATION_ERROR')
    errorShape(t, await post(app, '/auth/register', { email: freshEmail(), password: 'short' }), 400, 'VALIDATION_ERROR')
    t.equal((await post(app, '/auth/register', { email: freshEmail(), password: 'x'.repeat(128) })).statusCode, 201)
  })

  t.test('never truncates a password (no 72-byte bcrypt cut)', async (t) => {
    const email = freshEmail()
    const password = 'p'.repeat(100) + 'end'
    t.equal((await post(app, '/auth/register', { email, password })).statusCode, 201)
    t.equal((await post(app, '/auth/login', { email, password: 'p'.repeat(100) + 'END' })).statusCode, 401)
    t.equal((await post(app, '/auth/login', { email, password: 'p'.repeat(72) })).statusCode, 401)
    t.equal((await post(app, '/auth/login', { email, password })).statusCode, 200)
    const unicode = freshEmail()
    const pw = 'pässwörd-\u{1F510}-ünïcödé'
    t.equal((await post(app, '/auth/register', { email: unicode, password: pw })).statusCode, 201)
    t.equal((await post(app, '/auth/login', { email: unicode, password: pw })).statusCode, 200)
    t.equal((await post(app, '/auth/login', { email: unicode, password: pw.normalize('NFD') })).statusCode, 200, 'another spelling of the same password (RFC 8265 OpaqueString: NFC)')
    t.equal((await post(app, '/auth/login', { email: unicode, password: pw.replace('ä', 'a') })).statusCode, 401, 'a different password')
  })

  t.test('refuses bad bodies with 400 VALIDATION_ERROR', async (t) => {
    const cases: unknown[] = [
      {},
      { email: freshEmail() },
      { password: TEST_PASSWORD },
      { email: 123, password: TEST_PASSWORD },
      { email: freshEmail(), password: 123456789012345 },
      { email: freshEmail(), password: TEST_PASSWORD, role: 'admin' },
      { email: 'not-an-email', password: TEST_PASSWORD },
      { email: 'two@@example.test', password: TEST_PASSWORD },
      { email: 'in side@example.test', password: TEST_PASSWORD },
      { email: `${'a'.repeat(320)}@example.test`, password: TEST_PASSWORD },
      { email: [freshEmail()], password: TEST_PASSWORD },
      { email: null, password: TEST_PASSWORD },
      [],
      'a string'
    ]
    for (const body of cases) {
      errorShape(t, await post(app, '/auth/register', JSON.stringify(body), { 'content-type': 'application/json' }), 400, 'VALIDATION_ERROR')
    }
  })

  t.test('refuses malformed JSON, prototype pollution and an unknown query parameter with 400', async (t) => {
    errorShape(t, await post(app, '/auth/register', '{"email":', { 'content-type': 'application/json' }), 400, 'BAD_REQUEST')
    const proto = await post(app, '/auth/register', `{"email":"${freshEmail()}","password":"${TEST_PASSWORD}","__proto__":{"admin":true}}`, { 'content-type': 'application/json' })
    t.equal(proto.statusCode, 400)
    t.equal(proto.json().requestId, proto.headers['x-request-id'])
    const query = await app.inject({ method: 'POST', url: '/auth/register?admin=1', payload: { email: freshEmail(), password: TEST_PASSWORD } })
    errorShape(t, query, 400, 'VALIDATION_ERROR')
  })

  t.test('refuses other media types with 415 and oversized bodies with 413', async (t) => {
    const json = JSON.stringify({ email: freshEmail(), password: TEST_PASSWORD })
    errorShape(t, await post(app, '/auth/register', json, { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    errorShape(t, await post(app, '/auth/register', `email=${freshEmail()}&password=x`, { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    errorShape(t, await post(app, '/auth/register', JSON.stringify({ email: freshEmail(), password: 'p'.repeat(2_000_000) }), { 'content-type': 'application/json' }), 413, 'PAYLOAD_TOO_LARGE')
  })
})

t.test('POST /auth/register is a 404 when REGISTRATION_ENABLED=false', async (t) => {
  const app = await build(t, { env: { ...ENV, REGISTRATION_ENABLED: 'false' } })
  errorShape(t, await post(app, '/auth/register', { email: freshEmail(), password: TEST_PASSWORD }), 404, 'NOT_FOUND')
  const user = await registerUser(app)
  t.equal((await post(app, '/auth/login', { email: user.email, password: TEST_PASSWORD })).statusCode, 200, 'existing accounts still log in')
})

t.test('POST /auth/login', async (t) => {
  const app = await build(t, { env: ENV })

  t.test('answers {access_token, refresh_token, token_type, expires_in} with no-store', async (t) => {
    const user = await registerUser(app)
    const res = await post(app, '/auth/login', { email: ` ${user.email.toUpperCase()} `, password: TEST_PASSWORD })
    t.equal(res.statusCode, 200, 'the email is normalised as at registration')
    const body = res.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
    t.equal(body.token_type, 'Bearer')
    t.equal(body.expires_in, 3600)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(decode(body.access_token).payload.sub, user.id)
    const me = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${body.access_token}` } })
    t.equal(me.json().email, user.email)
  })

  t.test('each login is a new session', async (t) => {
    const user = await registerUser(app)
    const a = (await post(app, '/auth/login', { email: user.email, password: TEST_PASSWORD })).json()
    const b = (await post(app, '/auth/login', { email: user.email, password: TEST_PASSWORD })).json()
    t.not(decode(a.access_token).payload.sid, decode(b.access_token).payload.sid)
  })

  t.test('gives the same 401 AUTH_INVALID_CREDENTIALS for a wrong password and an unknown email', async (t) => {
    const user = await registerUser(app)
    const wrong = await post(app, '/auth/login', { email: user.email, password: 'not the right password' })
    const unknown = await post(app, '/auth/login', { email: freshEmail(), password: 'not the right password' })
    for (const res of [wrong, unknown]) {
      errorShape(t, res, 401, 'AUTH_INVALID_CREDENTIALS')
      t.equal(res.headers['www-authenticate'], 'Bearer realm="api"')
    }
    t.equal(wrong.json().message, unknown.json().message)
  })

  t.test('takes about as long for an unknown email as for a wrong password (dummy hash)', async (t) => {
    const user = await registerUser(app)
    const time = async (email: string) => {
      const start = performance.now()
      await post(app, '/auth/login', { email, password: 'not the right password' })
      return performance.now() - start
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
    const known: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 7; i++) {
      known.push(await time(user.email))
      unknown.push(await time(freshEmail()))
    }
    const ratio = median(unknown) / median(known)
    t.comment(`median wrong password ${median(known).toFixed(1)} ms, unknown email ${median(unknown).toFixed(1)} ms`)
    t.ok(ratio > 0.5 && ratio < 2, `ratio ${ratio.toFixed(2)} within 0.5..2`)
    t.ok(median(unknown) > 5, 'an unknown email costs an argon2 verification')
  })

  t.test('refuses bad bodies with the common error shape', async (t) => {
    for (const body of [{}, { email: 'a@b.c' }, { email: 'a@b.c', password: 5 }, { email: 'a@b.c', password: TEST_PASSWORD, extra: 1 }]) {
      errorShape(t, await post(app, '/auth/login', body), 400, 'VALIDATION_ERROR')
    }
    errorShape(t, await post(app, '/auth/login', 'email=a', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    errorShape(t, await app.inject({ method: 'POST', url: '/auth/login' }), 400, 'VALIDATION_ERROR')
  })
})

t.test('POST /auth/refresh', async (t) => {
  const app = await build(t, { env: ENV })

  t.test('returns new tokens and spends the old refresh token', async (t) => {
    const user = await loginAs(app)
    const res = await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${user.refreshToken}` })
    t.equal(res.statusCode, 200, res.body)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
    t.not(body.refresh_token, user.refreshToken)
    t.equal(decode(body.access_token).payload.sid, user.sessionId, 'same session')
    t.equal(decode(body.refresh_token).payload.exp, decode(user.refreshToken).payload.exp, 'the session keeps its absolute end')
    t.equal((await injectAs(app, body.access_token, { method: 'GET', url: '/auth/me' })).statusCode, 200)
    const again = await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${body.refresh_token}` })
    t.equal(again.statusCode, 200, 'the new refresh token works once')
  })

  t.test('a reused refresh token revokes the whole session', async (t) => {
    const user = await loginAs(app)
    const first = (await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${user.refreshToken}` })).json()
    const reuse = await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${user.refreshToken}` })
    errorShape(t, reuse, 401, 'AUTH_TOKEN_REVOKED')
    t.equal(reuse.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token"')
    // The legitimate holder's new tokens die with the session too (the thief may hold them).
    errorShape(t, await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${first.refresh_token}` }), 401, 'AUTH_TOKEN_REVOKED')
    errorShape(t, await injectAs(app, first.access_token, { method: 'GET', url: '/auth/me' }), 401, 'AUTH_TOKEN_REVOKED')
    errorShape(t, await injectAs(app, user.accessToken, { method: 'GET', url: '/auth/me' }), 401, 'AUTH_TOKEN_REVOKED')
    const { rows } = await app.pg.query('SELECT revoked_reason FROM sessions WHERE id = $1', [user.sessionId])
    t.equal(rows[0].revoked_reason, 'refresh_reuse')
    const other = await loginAs(app, { email: user.email })
    t.equal((await injectAs(app, other.accessToken, { method: 'GET', url: '/auth/me' })).statusCode, 200, 'other sessions live on')
  })

  t.test('two concurrent refreshes with one token: one wins, then the session is revoked', async (t) => {
    const user = await loginAs(app)
    const [a, b] = await Promise.all([1, 2].map(() => post(app, '/auth/refresh', undefined, { authorization: `Bearer ${user.refreshToken}` })))
    t.same([a?.statusCode, b?.statusCode].sort(), [200, 401])
  })

  t.test('refuses a missing token, an access token and bad bodies', async (t) => {
    const user = await loginAs(app)
    errorShape(t, await post(app, '/auth/refresh', undefined), 401, 'AUTH_MISSING_TOKEN')
    errorShape(t, await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${user.accessToken}` }), 401, 'AUTH_INVALID_TOKEN')
    errorShape(t, await post(app, '/auth/refresh', { refresh_token: user.refreshToken }, { authorization: `Bearer ${user.refreshToken}` }), 400, 'VALIDATION_ERROR')
    t.equal((await post(app, '/auth/refresh', {}, { authorization: `Bearer ${user.refreshToken}` })).statusCode, 200, 'an empty JSON object is fine')
  })
})

t.test('POST /auth/logout', async (t) => {
  const app = await build(t, { env: ENV })

  t.test('answers 204 and revokes every token of the session', async (t) => {
    const user = await loginAs(app)
    const res = await injectAs(app, user.accessToken, { method: 'POST', url: '/auth/logout' })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    errorShape(t, await injectAs(app, user.accessToken, { method: 'GET', url: '/auth/me' }), 401, 'AUTH_TOKEN_REVOKED')
    errorShape(t, await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${user.refreshToken}` }), 401, 'AUTH_TOKEN_REVOKED')
    errorShape(t, await injectAs(app, user.accessToken, { method: 'POST', url: '/auth/logout' }), 401, 'AUTH_TOKEN_REVOKED')
  })

  t.test('needs an access token, not a refresh token', async (t) => {
    const user = await loginAs(app)
    errorShape(t, await app.inject({ method: 'POST', url: '/auth/logout' }), 401, 'AUTH_MISSING_TOKEN')
    errorShape(t, await post(app, '/auth/logout', undefined, { authorization: `Bearer ${user.refreshToken}` }), 401, 'AUTH_INVALID_TOKEN')
  })

  t.test('a service token has no session to log out of: 403', async (t) => {
    const token = await clientToken(app, { scopes: ['notes:read'] })
    errorShape(t, await injectAs(app, token, { method: 'POST', url: '/auth/logout' }), 403, 'AUTH_INSUFFICIENT_SCOPE')
  })
})

t.test('GET /auth/me', async (t) => {
  const app = await build(t, { env: ENV })

  t.test('answers {id, email, scopes, created_at} for a user', async (t) => {
    const user = await loginAs(app)
    const res = await injectAs(app, user.accessToken, { method: 'GET', url: '/auth/me' })
    t.equal(res.statusCode, 200)
    t.same(Object.keys(res.json()).sort(), ['created_at', 'email', 'id', 'scopes'])
    t.match(res.json(), { id: user.userId, email: user.email, scopes: [...USER_SCOPES] })
    t.equal(res.headers['cache-control'], 'no-store')
  })

  t.test('answers {client_id, name, scopes} for a service client', async (t) => {
    const token = await clientToken(app, { name: 'billing-me', scopes: ['notes:read'] })
    const res = await injectAs(app, token, { method: 'GET', url: '/auth/me' })
    t.equal(res.statusCode, 200)
    t.same(Object.keys(res.json()).sort(), ['client_id', 'name', 'scopes'])
    t.match(res.json(), { name: 'billing-me', scopes: ['notes:read'] })
  })

  t.test('refuses an unknown query parameter', async (t) => {
    const user = await loginAs(app)
    errorShape(t, await injectAs(app, user.accessToken, { method: 'GET', url: '/auth/me?access_token=x' }), 400, 'VALIDATION_ERROR')
  })

  t.test('a method the path does not serve is a 404', async (t) => {
    errorShape(t, await app.inject({ method: 'DELETE', url: '/auth/me' }), 404, 'NOT_FOUND')
    errorShape(t, await app.inject({ method: 'GET', url: '/auth/login' }), 404, 'NOT_FOUND')
  })
})

t.test('the auth routes have their own rate limit (RATE_LIMIT_AUTH_MAX per minute)', async (t) => {
  const app = await build(t, { env: { ...ENV, RATE_LIMIT_AUTH_MAX: '2' } })
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await post(app, '/auth/login', { email: 'nobody@example.test', password: TEST_PASSWORD })).statusCode)
  t.same(statuses, [401, 401, 429])
  const limited = await post(app, '/auth/login', { email: 'nobody@example.test', password: TEST_PASSWORD })
  errorShape(t, limited, 429, 'RATE_LIMITED')
  const user = await loginAs(app)
  t.equal((await injectAs(app, user.accessToken, { method: 'GET', url: '/auth/me' })).statusCode, 200, 'other routes are not affected')
})

t.test('logs carry no password, token, cookie or CSRF value', async (t) => {
  const logs: object[] = []
  const app = await build(t, { env: { ...ENV, JWT_TOKEN_LOCATION: 'headers,cookies' }, logs })
  const email = freshEmail()
  const password = 'canary-password-4f1d9c'
  await post(app, '/auth/register', { email, password })
  await post(app, '/auth/login', { email, password: 'canary-wrong-password-77ab' })
  const login = await post(app, '/auth/login', { email, password })
  const { access_token: access, refresh_token: refresh } = login.json()
  const csrf = decode(access).payload.csrf as string
  await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${access}` } })
  await app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: `access_token_cookie=${access}` } })
  await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${refresh}` })
  await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${refresh}` })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `access_token_cookie=${access}`, 'x-csrf-token': csrf } })
  await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: 'Bearer canary.token.value' } })
  const text = JSON.stringify(logs)
  t.ok(logs.length > 10, `${logs.length} log lines`)
  for (const secret of [password, 'canary-wrong-password-77ab', access, refresh, csrf, 'canary.token.value', access.split('.')[2] as string, refresh.split('.')[2] as string]) {
    t.notOk(text.includes(secret), `no ${secret.slice(0, 12)}… in the logs`)
  }
  t.ok(text.includes('"event":"auth.login.failed"'), 'failed logins are logged (ASVS 16.3.1)')
  t.ok(text.includes('"event":"auth.refresh.reuse_detected"'), 'token reuse is logged')
})
