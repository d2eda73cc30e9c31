import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createServiceClient, loginAs, registerUser, TEST_PASSWORD } from '../helper.js'
import { decode } from '../fixtures/jwt.js'

// Security events (docs/contract.md, "Security events"): each one where it happens,
// with its level, reqId, client address and the principal's id when known, never a
// secret, and every occurrence of a burst. ratelimit.exceeded is in
// test/plugins/rate-limit.test.ts, auth.login.throttled in test/e2e/login-throttle.test.ts,
// client.disabled in test/scripts/clients.test.ts.

type Line = Record<string, unknown>
const INFO = 30
const WARN = 40

async function setup (t: Parameters<typeof build>[0], env: Record<string, string> = {}) {
  const logs: Line[] = []
  const app = await build(t, { env, logs })
  const events = (name: string) => logs.filter((l) => l.event === name)
  return { app, logs, events }
}

function post (app: FastifyInstance, url: string, payload?: object, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, payload, headers: { 'x-request-id': `req-${url.replaceAll('/', '-')}`, ...headers }, remoteAddress: '198.51.100.20' })
}

t.test('logins: succeeded (info, with user and session), failed (warn, with the user only when the account exists)', async (t) => {
  const { app, events } = await setup(t)
  const user = await registerUser(app)
  const ok = await post(app, '/auth/login', { email: user.email, password: TEST_PASSWORD })
  t.equal(ok.statusCode, 200)
  const sessionId = decode(ok.json().access_token).payload.sid
  t.match(events('auth.login.succeeded'), [{ level: INFO, reqId: 'req--auth-login', remoteAddress: '198.51.100.20', userId: user.id, sessionId, msg: 'auth.login.succeeded' }])

  await post(app, '/auth/login', { email: user.email, password: 'the wrong password, surely' })
  await post(app, '/auth/login', { email: 'nobody-at-all@example.test', password: 'the wrong password, surely' })
  const failed = events('auth.login.failed')
  t.equal(failed.length, 2)
  t.match(failed[0], { level: WARN, userId: user.id, remoteAddress: '198.51.100.20', reqId: 'req--auth-login' })
  t.notOk('userId' in (failed[1] as object), 'an unknown email has no principal')
})

t.test('sessions: refresh rotated (info), reuse detected (warn, with the revoked session), logout (info)', async (t) => {
  const { app, events } = await setup(t)
  const user = await loginAs(app)
  const rotated = await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${user.refreshToken}` })
  t.equal(rotated.statusCode, 200)
  t.match(events('auth.refresh.rotated'), [{ level: INFO, userId: user.userId, sessionId: user.sessionId, remoteAddress: '198.51.100.20' }])

  const reused = await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${user.refreshToken}` })
  t.equal(reused.statusCode, 401)
  t.match(events('auth.refresh.reuse_detected'), [{ level: WARN, userId: user.userId, revokedSessionId: user.sessionId }])

  const other = await loginAs(app)
  t.equal((await post(app, '/auth/logout', undefined, { authorization: `Bearer ${other.accessToken}` })).statusCode, 204)
  t.match(events('auth.logout'), [{ level: INFO, userId: other.userId, sessionId: other.sessionId, reqId: 'req--auth-logout' }])
})

t.test('every refused token is auth.token.refused with its code, a burst included', async (t) => {
  const { app, events } = await setup(t)
  const user = await loginAs(app)
  await app.inject({ method: 'GET', url: '/notes' })
  await app.inject({ method: 'GET', url: '/notes', headers: { authorization: 'Bearer not.a.token' } })
  await app.inject({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${user.accessToken}` } })
  await post(app, '/auth/logout', undefined, { authorization: `Bearer ${user.accessToken}` })
  await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${user.accessToken}` } })
  t.same(events('auth.token.refused').map((e) => [e.level, e.code, e.tokenType]), [
    [WARN, 'AUTH_MISSING_TOKEN', 'access'],
    [WARN, 'AUTH_INVALID_TOKEN', 'access'],
    [WARN, 'AUTH_INVALID_TOKEN', 'refresh'],
    [WARN, 'AUTH_TOKEN_REVOKED', 'access']
  ])
  for (let i = 0; i < 50; i++) await app.inject({ method: 'GET', url: '/notes', headers: { authorization: `Bearer junk.${i}.x` } })
  t.equal(events('auth.token.refused').length, 54, 'fifty refusals in a row, fifty lines: nothing throttled away')
  t.ok(events('auth.token.refused').every((e) => typeof e.reqId === 'string' && e.remoteAddress === '127.0.0.1'))
})

t.test('a cookie-authenticated write without the right X-CSRF-TOKEN is auth.csrf.failed, with whose token it was', async (t) => {
  const { app, events } = await setup(t, { JWT_TOKEN_LOCATION: 'cookies' })
  const user = await loginAs(app)
  const res = await app.inject({ method: 'POST', url: '/notes', payload: { title: 'x' }, headers: { cookie: `access_token_cookie=${user.accessToken}`, 'x-csrf-token': 'forged' } })
  t.equal(res.json().code, 'AUTH_CSRF_FAILED')
  t.match(events('auth.csrf.failed'), [{ level: WARN, userId: user.userId, sessionId: user.sessionId }])
  t.same(events('auth.token.refused'), [], 'counted once, as the CSRF failure it is')
})

t.test('service clients: token issued (info, with client and scope), authentication failed (warn, with the reason)', async (t) => {
  const { app, events } = await setup(t)
  const client = await createServiceClient(app, { scopes: ['notes:read'] })
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`
  const form = { 'content-type': 'application/x-www-form-urlencoded' }
  const token = (headers: Record<string, string>, body = 'grant_type=client_credentials') =>
    app.inject({ method: 'POST', url: '/auth/token', payload: body, headers: { ...form, ...headers } })

  t.equal((await token({ authorization: basic(client.clientId, client.clientSecret) })).statusCode, 200)
  t.match(events('client.token.issued'), [{ level: INFO, clientId: client.clientId, scope: 'notes:read' }])

  await token({ authorization: basic(client.clientId, 'wrong-secret') })
  await token({}, 'grant_type=client_credentials&client_id=00000000-0000-4000-8000-000000000000&client_secret=x')
  await token({ authorization: 'Basic !!!' })
  await token({})
  await app.pg.query('UPDATE clients SET disabled_at = now() WHERE id = $1', [client.clientId])
  await token({ authorization: basic(client.clientId, client.clientSecret) })
  t.same(events('client.auth.failed').map((e) => [e.level, e.reason, e.clientId, e.method]), [
    [WARN, 'wrong_secret', client.clientId, 'client_secret_basic'],
    [WARN, 'unknown_client', '00000000-0000-4000-8000-000000000000', 'client_secret_post'],
    [WARN, 'malformed_basic', undefined, 'client_secret_basic'],
    [WARN, 'no_credentials', undefined, 'client_secret_post'],
    [WARN, 'client_disabled', client.clientId, 'client_secret_basic']
  ])
})

t.test('no event line holds a secret', async (t) => {
  const { app, logs } = await setup(t)
  const user = await registerUser(app)
  const client = await createServiceClient(app, { scopes: ['notes:read'] })
  const login = await post(app, '/auth/login', { email: user.email, password: TEST_PASSWORD })
  await post(app, '/auth/login', { email: user.email, password: 'canary-wrong-password-1' })
  await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${login.json().refresh_token}` })
  await post(app, '/auth/refresh', undefined, { authorization: `Bearer ${login.json().refresh_token}` })
  await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret } })
  await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: 'canary-client-secret' } })
  const text = JSON.stringify(logs.filter((l) => l.event !== undefined))
  t.ok(logs.filter((l) => l.event !== undefined).length >= 6)
  for (const secret of [TEST_PASSWORD, 'canary-wrong-password-1', login.json().access_token, login.json().refresh_token, client.clientSecret, 'canary-client-secret', user.email]) {
    t.notOk(text.includes(secret), `no ${String(secret).slice(0, 10)}… in an event`)
  }
})
