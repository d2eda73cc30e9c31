import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, loginAs, registerUser, TEST_PASSWORD } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY, decode, forge, userClaims } from '../fixtures/jwt.js'

// Tokens in cookies (docs/contract.md, "Tokens"): Flask-JWT-Extended's cookie names, double-submit CSRF,
// the order of JWT_TOKEN_LOCATION and no fallback after a bad first location.

const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY }

function testRoutes (app: FastifyInstance): void {
  app.get('/test/whoami', { preParsing: app.authenticate }, async (request) => request.principal)
  app.post('/test/whoami', { preParsing: app.authenticate }, async (request) => request.principal)
  app.delete('/test/whoami', { preParsing: app.authenticate }, async (request) => request.principal)
}

type Cookie = { name: string, value: string, path?: string, httpOnly?: boolean, secure?: boolean, sameSite?: string, expires?: Date, maxAge?: number }

function cookiesOf (res: LightMyRequestResponse): Record<string, Cookie> {
  return Object.fromEntries((res.cookies as Cookie[]).map((c) => [c.name, c]))
}

async function login (app: FastifyInstance): Promise<{ res: LightMyRequestResponse, cookies: Record<string, Cookie> }> {
  const user = await registerUser(app)
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: TEST_PASSWORD } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.body}`)
  return { res, cookies: cookiesOf(res) }
}

function cookieHeader (cookies: Record<string, Cookie>, ...names: string[]): string {
  return names.map((n) => `${n}=${cookies[n]?.value}`).join('; ')
}

function refused (t: Test, res: LightMyRequestResponse, code: string, presented = true): void {
  t.equal(res.statusCode, 401, res.body)
  t.equal(res.json().code, code)
  t.equal(res.headers['www-authenticate'], presented ? 'Bearer realm="api", error="invalid_token"' : 'Bearer realm="api"')
}

t.test('cookies as the only location', async (t) => {
  const app = await build(t, { env: { ...ENV, JWT_TOKEN_LOCATION: 'cookies' }, routes: testRoutes })

  t.test('login sets the four cookies with their paths and flags, and no token in the body', async (t) => {
    const { res, cookies } = await login(app)
    t.same(Object.keys(res.json()).sort(), ['expires_in', 'token_type'])
    t.equal(res.json().token_type, 'Bearer')
    t.equal(res.headers['cache-control'], 'no-store')
    t.match(cookies.access_token_cookie, { path: '/', httpOnly: true, sameSite: 'Lax' })
    t.match(cookies.refresh_token_cookie, { path: '/auth', httpOnly: true, sameSite: 'Lax' })
    t.match(cookies.csrf_access_token, { path: '/', sameSite: 'Lax' })
    t.match(cookies.csrf_refresh_token, { path: '/auth', sameSite: 'Lax' })
    t.notOk(cookies.csrf_access_token?.httpOnly, 'readable by the page script')
    t.notOk(cookies.csrf_refresh_token?.httpOnly)
    for (const c of Object.values(cookies)) t.notOk(c.secure, 'JWT_COOKIE_SECURE=false')
    const access = decode(cookies.access_token_cookie?.value ?? '').payload
    const refresh = decode(cookies.refresh_token_cookie?.value ?? '').payload
    t.equal(access.csrf, cookies.csrf_access_token?.value, 'the csrf claim is the double-submit value')
    t.equal(refresh.csrf, cookies.csrf_refresh_token?.value)
    t.not(access.csrf, refresh.csrf)
  })

  t.test('a GET authenticates by cookie without the CSRF header', async (t) => {
    const { cookies } = await login(app)
    const res = await app.inject({ method: 'GET', url: '/test/whoami', headers: { cookie: cookieHeader(cookies, 'access_token_cookie') } })
    t.equal(res.statusCode, 200)
  })

  t.test('a POST, PATCH-like or DELETE by cookie needs X-CSRF-TOKEN equal to the claim', async (t) => {
    const { cookies } = await login(app)
    const cookie = cookieHeader(cookies, 'access_token_cookie', 'csrf_access_token')
    for (const method of ['POST', 'DELETE'] as const) {
      refused(t, await app.inject({ method, url: '/test/whoami', headers: { cookie } }), 'AUTH_CSRF_FAILED')
      refused(t, await app.inject({ method, url: '/test/whoami', headers: { cookie, 'x-csrf-token': 'wrong' } }), 'AUTH_CSRF_FAILED')
      refused(t, await app.inject({ method, url: '/test/whoami', headers: { cookie, 'x-csrf-token': '' } }), 'AUTH_CSRF_FAILED')
      refused(t, await app.inject({ method, url: '/test/whoami', headers: { cookie, 'x-csrf-token': cookies.csrf_refresh_token?.value ?? '' } }), 'AUTH_CSRF_FAILED')
      const ok = await app.inject({ method, url: '/test/whoami', headers: { cookie, 'x-csrf-token': cookies.csrf_access_token?.value ?? '' } })
      t.equal(ok.statusCode, 200)
    }
  })

  t.test('a cookie token without a csrf claim cannot write', async (t) => {
    const token = forge(userClaims())
    refused(t, await app.inject({ method: 'POST', url: '/test/whoami', headers: { cookie: `access_token_cookie=${token}`, 'x-csrf-token': 'anything' } }), 'AUTH_CSRF_FAILED')
  })

  t.test('ignores the Authorization header when cookies are the only location', async (t) => {
    const user = await loginAs(app)
    refused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: `Bearer ${user.accessToken}` } }), 'AUTH_MISSING_TOKEN', false)
  })

  t.test('a bad cookie is AUTH_INVALID_TOKEN, an empty one is no token', async (t) => {
    refused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { cookie: 'access_token_cookie=garbage' } }), 'AUTH_INVALID_TOKEN')
    refused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { cookie: 'access_token_cookie=' } }), 'AUTH_MISSING_TOKEN', false)
  })

  t.test('refresh reads refresh_token_cookie with the refresh CSRF value, and rotates the cookies', async (t) => {
    const { cookies } = await login(app)
    const cookie = cookieHeader(cookies, 'access_token_cookie', 'refresh_token_cookie', 'csrf_access_token', 'csrf_refresh_token')
    refused(t, await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie } }), 'AUTH_CSRF_FAILED')
    refused(t, await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, 'x-csrf-token': cookies.csrf_access_token?.value ?? '' } }), 'AUTH_CSRF_FAILED')
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, 'x-csrf-token': cookies.csrf_refresh_token?.value ?? '' } })
    t.equal(res.statusCode, 200, res.body)
    t.same(Object.keys(res.json()).sort(), ['expires_in', 'token_type'])
    const next = cookiesOf(res)
    t.same(Object.keys(next).sort(), ['access_token_cookie', 'csrf_access_token', 'csrf_refresh_token', 'refresh_token_cookie'])
    t.not(next.refresh_token_cookie?.value, cookies.refresh_token_cookie?.value)
  })

  t.test('logout clears all four cookies', async (t) => {
    const { cookies } = await login(app)
    const res = await app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: { cookie: cookieHeader(cookies, 'access_token_cookie', 'csrf_access_token'), 'x-csrf-token': cookies.csrf_access_token?.value ?? '' }
    })
    t.equal(res.statusCode, 204, res.body)
    const cleared = cookiesOf(res)
    t.same(Object.keys(cleared).sort(), ['access_token_cookie', 'csrf_access_token', 'csrf_refresh_token', 'refresh_token_cookie'])
    for (const c of Object.values(cleared)) {
      t.equal(c.value, '')
      t.ok(c.expires !== undefined && c.expires.getTime() < Date.now(), `${c.name} expired`)
    }
    t.equal(cleared.refresh_token_cookie?.path, '/auth')
    t.equal(cleared.csrf_refresh_token?.path, '/auth')
    refused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { cookie: cookieHeader(cookies, 'access_token_cookie') } }), 'AUTH_TOKEN_REVOKED')
  })
})

t.test('headers as the only location (the default)', async (t) => {
  const app = await build(t, { env: ENV, routes: testRoutes })

  t.test('login sets no cookie and returns the tokens', async (t) => {
    const user = await registerUser(app)
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: TEST_PASSWORD } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['set-cookie'], undefined)
    t.type(res.json().access_token, 'string')
    t.type(res.json().refresh_token, 'string')
  })

  t.test('a token cookie is never read', async (t) => {
    const user = await loginAs(app)
    refused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { cookie: `access_token_cookie=${user.accessToken}` } }), 'AUTH_MISSING_TOKEN', false)
  })

  t.test('logout sets no cookie', async (t) => {
    const user = await loginAs(app)
    const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${user.accessToken}` } })
    t.equal(res.statusCode, 204)
    t.equal(res.headers['set-cookie'], undefined)
  })
})

t.test('headers, then cookies', async (t) => {
  const app = await build(t, { env: { ...ENV, JWT_TOKEN_LOCATION: 'headers,cookies' }, routes: testRoutes })

  t.test('login returns the tokens in the body and sets the cookies', async (t) => {
    const { res, cookies } = await login(app)
    t.type(res.json().access_token, 'string')
    t.equal(Object.keys(cookies).length, 4)
  })

  t.test('a header token is used before the cookie', async (t) => {
    const a = await loginAs(app)
    const b = await loginAs(app)
    const res = await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: `Bearer ${a.accessToken}`, cookie: `access_token_cookie=${b.accessToken}` } })
    t.equal(res.json().userId, a.userId)
    const bad = await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: `Bearer ${a.accessToken}`, cookie: 'access_token_cookie=garbage' } })
    t.equal(bad.statusCode, 200, 'the cookie is not looked at')
  })

  t.test('a header-authenticated POST needs no CSRF header', async (t) => {
    const a = await loginAs(app)
    const res = await app.inject({ method: 'POST', url: '/test/whoami', headers: { authorization: `Bearer ${a.accessToken}` } })
    t.equal(res.statusCode, 200)
  })

  t.test('a bad header never falls back to a good cookie', async (t) => {
    const { cookies } = await login(app)
    const cookie = cookieHeader(cookies, 'access_token_cookie')
    for (const authorization of ['Bearer garbage', `Basic ${Buffer.from('a:b').toString('base64')}`, 'Bearer a b', 'Bearer']) {
      refused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization, cookie } }), 'AUTH_INVALID_TOKEN')
    }
    const now = Math.floor(Date.now() / 1000)
    refused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: `Bearer ${forge(userClaims({ exp: now - 60 }))}`, cookie } }), 'AUTH_TOKEN_EXPIRED')
  })

  t.test('without a header, the cookie is used', async (t) => {
    const { cookies } = await login(app)
    const res = await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: '', cookie: cookieHeader(cookies, 'access_token_cookie') } })
    t.equal(res.statusCode, 200)
  })
})

t.test('cookies, then headers', async (t) => {
  const app = await build(t, { env: { ...ENV, JWT_TOKEN_LOCATION: 'cookies,headers' }, routes: testRoutes })

  t.test('a cookie token is used before the header, and a bad cookie does not fall back', async (t) => {
    const a = await loginAs(app)
    const b = await loginAs(app)
    const res = await app.inject({ method: 'GET', url: '/test/whoami', headers: { cookie: `access_token_cookie=${a.accessToken}`, authorization: `Bearer ${b.accessToken}` } })
    t.equal(res.json().userId, a.userId)
    refused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { cookie: 'access_token_cookie=garbage', authorization: `Bearer ${b.accessToken}` } }), 'AUTH_INVALID_TOKEN')
    const header = await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: `Bearer ${b.accessToken}` } })
    t.equal(header.json().userId, b.userId, 'no cookie: the header is used')
  })
})

t.test('JWT_COOKIE_CSRF_PROTECT=false', async (t) => {
  const app = await build(t, { env: { ...ENV, JWT_TOKEN_LOCATION: 'cookies', JWT_COOKIE_CSRF_PROTECT: 'false' }, routes: testRoutes })
  const { cookies } = await login(app)
  t.notOk(cookies.csrf_access_token, 'no CSRF cookies')
  t.notOk(decode(cookies.access_token_cookie?.value ?? '').payload.csrf)
  const res = await app.inject({ method: 'POST', url: '/test/whoami', headers: { cookie: cookieHeader(cookies, 'access_token_cookie') } })
  t.equal(res.statusCode, 200)
})

t.test('secure cookies with SameSite=Strict or None', async (t) => {
  for (const sameSite of ['Strict', 'None']) {
    const app = await build(t, { env: { ...ENV, JWT_TOKEN_LOCATION: 'cookies', JWT_COOKIE_SECURE: 'true', JWT_COOKIE_SAMESITE: sameSite }, routes: testRoutes })
    const { cookies } = await login(app)
    for (const c of Object.values(cookies)) {
      t.equal(c.secure, true, `${c.name} Secure`)
      t.equal(c.sameSite, sameSite, `${c.name} SameSite=${sameSite}`)
    }
  }
})
