import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, loginAs } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY, b64, decode, forge, signedWith, userClaims } from '../fixtures/jwt.js'
import { USER_SCOPES } from '../../schemas/auth.js'

// Token verification, attacked from outside (docs/contract.md, "Tokens"; RFC 8725).

// Many forged tokens from one address: now that failed authentications count against the
// rate limit (token probing), the limit is raised out of the way of these tests.
const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY }

/** Test-only routes: who the token says we are, and one that needs a scope nobody has. */
function testRoutes (app: FastifyInstance): void {
  app.get('/test/whoami', { preParsing: app.authenticate }, async (request) => request.principal)
  app.post('/test/whoami', { preParsing: app.authenticate }, async (request) => request.principal)
  app.get('/test/admin', { preParsing: [app.authenticate, app.requireScope('admin')] }, async () => ({ ok: true }))
  app.get('/test/notes-read', { preParsing: [app.authenticate, app.requireScope('notes:read')] }, async () => ({ ok: true }))
  app.get('/test/forgot-authenticate', { preParsing: app.requireScope('notes:read') }, async () => ({ ok: true }))
}

function bearer (app: FastifyInstance, token: string, url = '/test/whoami'): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
}

function assertRefused (t: Test, res: LightMyRequestResponse, code = 'AUTH_INVALID_TOKEN', challenge = 'Bearer realm="api", error="invalid_token"'): void {
  t.equal(res.statusCode, 401, `401 (${res.body})`)
  const body = res.json()
  t.equal(body.code, code)
  t.equal(body.error, 'Unauthorized')
  t.type(body.requestId, 'string')
  t.equal(res.headers['www-authenticate'], challenge)
}

t.test('with the default configuration (HS256, Authorization: Bearer)', async (t) => {
  const app = await build(t, { env: ENV, routes: testRoutes })

  t.test('accepts a token the service issued and sets request.principal', async (t) => {
    const user = await loginAs(app)
    const res = await bearer(app, user.accessToken)
    t.equal(res.statusCode, 200)
    t.same(res.json(), { kind: 'user', userId: user.userId, sessionId: user.sessionId, scopes: [...USER_SCOPES] })
  })

  t.test('accepts a well-formed token signed with the key (baseline of the forgeries below)', async (t) => {
    const res = await bearer(app, forge(userClaims()))
    t.equal(res.statusCode, 200)
  })

  t.test('signs with the configured algorithm, key and claims', async (t) => {
    const user = await loginAs(app)
    const { header, payload } = decode(user.accessToken)
    t.equal(header.alg, 'HS256')
    t.ok(signedWith(user.accessToken, TEST_JWT_SECRET))
    t.same(Object.keys(payload).sort(), ['exp', 'iat', 'jti', 'nbf', 'scope', 'sid', 'sub', 'type'])
    t.equal(payload.type, 'access')
    t.equal(payload.exp as number - (payload.iat as number), 3600)
    t.equal(decode(user.refreshToken).payload.type, 'refresh')
  })

  t.test('refuses a missing token with AUTH_MISSING_TOKEN and a bare challenge', async (t) => {
    assertRefused(t, await app.inject({ method: 'GET', url: '/test/whoami' }), 'AUTH_MISSING_TOKEN', 'Bearer realm="api"')
    assertRefused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: '' } }), 'AUTH_MISSING_TOKEN', 'Bearer realm="api"')
    assertRefused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: '   ' } }), 'AUTH_MISSING_TOKEN', 'Bearer realm="api"')
  })

  t.test('refuses a token signed with alg none, in any casing', async (t) => {
    for (const alg of ['none', 'NoNe', 'NONE']) {
      assertRefused(t, await bearer(app, forge(userClaims(), { alg, signature: '' })))
      assertRefused(t, await bearer(app, forge(userClaims(), { alg })))
    }
  })

  t.test('refuses HS384 and HS512 tokens signed with the right secret (algorithm confusion)', async (t) => {
    assertRefused(t, await bearer(app, forge(userClaims(), { alg: 'HS384' })))
    assertRefused(t, await bearer(app, forge(userClaims(), { alg: 'HS512' })))
  })

  t.test('refuses RS256 and an unknown algorithm named in the header', async (t) => {
    assertRefused(t, await bearer(app, forge(userClaims(), { alg: 'RS256', signature: 'c2lnbmF0dXJl' })))
    assertRefused(t, await bearer(app, forge(userClaims(), { alg: 'XX999', signature: 'c2lnbmF0dXJl' })))
  })

  t.test('refuses a token signed with another key', async (t) => {
    assertRefused(t, await bearer(app, forge(userClaims(), { secret: 'another-key-that-is-just-as-long-as-the-real-one' })))
    assertRefused(t, await bearer(app, forge(userClaims(), { secret: '' })))
  })

  t.test('refuses a tampered payload under the original signature', async (t) => {
    const user = await loginAs(app)
    const [h, , s] = user.accessToken.split('.')
    const payload = { ...decode(user.accessToken).payload, scope: 'notes:read notes:write admin' }
    assertRefused(t, await bearer(app, `${h}.${b64(payload)}.${s}`))
  })

  t.test('refuses a stripped signature and malformed shapes', async (t) => {
    const user = await loginAs(app)
    const [h, p, s] = user.accessToken.split('.') as [string, string, string]
    for (const token of [`${h}.${p}.`, `${h}.${p}`, `${h}.${p}.${s}=`, `${h}.${p}.${s}.x`, `${h}..${s}`, `.${p}.${s}`, 'not-a-jwt', '...', `${h}.${p}.${s.replace(/-/g, '+')}+/`]) {
      assertRefused(t, await bearer(app, token))
    }
  })

  t.test('refuses an expired token with AUTH_TOKEN_EXPIRED, and accepts one within the 5 s leeway', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    assertRefused(t, await bearer(app, forge(userClaims({ iat: now - 100, nbf: now - 100, exp: now - 10 }))), 'AUTH_TOKEN_EXPIRED')
    const res = await bearer(app, forge(userClaims({ iat: now - 100, nbf: now - 100, exp: now - 2 })))
    t.equal(res.statusCode, 200, 'expired 2 s ago: within the leeway')
  })

  t.test('the verification cache never outlives a token: accepted within the leeway, refused once past it', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    // Expired 4 to 5 s ago: inside the 5 s leeway now, outside it 1.6 s later.
    const token = forge(userClaims({ iat: now - 100, nbf: now - 100, exp: now - 4 }))
    t.equal((await bearer(app, token)).statusCode, 200, 'verified (and cached) while within the leeway')
    await new Promise((resolve) => setTimeout(resolve, 1600))
    assertRefused(t, await bearer(app, token), 'AUTH_TOKEN_EXPIRED')
  })

  t.test('an expired token with a bad signature is invalid, not expired (signature first)', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    assertRefused(t, await bearer(app, forge(userClaims({ exp: now - 100 }), { secret: 'wrong-wrong-wrong-wrong-wrong-wrong-wrong' })))
  })

  t.test('refuses a token whose nbf is in the future beyond the leeway', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    assertRefused(t, await bearer(app, forge(userClaims({ nbf: now + 60 }))))
    t.equal((await bearer(app, forge(userClaims({ nbf: now + 2 })))).statusCode, 200, 'nbf 2 s ahead: within the leeway')
  })

  t.test('refuses a token missing any required claim', async (t) => {
    for (const claim of ['sub', 'jti', 'iat', 'exp', 'type']) {
      const claims = userClaims()
      delete claims[claim]
      assertRefused(t, await bearer(app, forge(claims)), 'AUTH_INVALID_TOKEN')
    }
  })

  t.test('refuses claims of the wrong type', async (t) => {
    const cases: Array<Record<string, unknown>> = [
      { exp: String(Math.floor(Date.now() / 1000) + 600) },
      { exp: '123' },
      { iat: 'yesterday' },
      { nbf: '0' },
      { sub: 123 },
      { sub: '' },
      { sub: ['a', 'b'] },
      { jti: 5 },
      { type: 'ACCESS' },
      { type: ['access'] },
      { scope: ['admin'] },
      { sid: 'not-a-uuid' },
      { sid: 42 },
      { exp: null },
      { exp: Number.POSITIVE_INFINITY }
    ]
    for (const overrides of cases) assertRefused(t, await bearer(app, forge(userClaims(overrides))))
  })

  t.test('refuses a payload that is not a JSON object', async (t) => {
    for (const payload of [[1, 2, 3], 'a string', 42, null]) assertRefused(t, await bearer(app, forge(payload)))
    const h = b64({ alg: 'HS256', typ: 'JWT' })
    assertRefused(t, await bearer(app, `${h}.${Buffer.from('{not json').toString('base64url')}.c2ln`))
  })

  t.test('refuses a token with an unknown crit header', async (t) => {
    assertRefused(t, await bearer(app, forge(userClaims(), { header: { crit: ['exp-policy'], 'exp-policy': 1 } })))
    assertRefused(t, await bearer(app, forge(userClaims(), { header: { crit: 'b64' } })))
  })

  t.test('ignores kid, jku and x5u headers: the key never comes from the token', async (t) => {
    const wrong = 'attacker-key-attacker-key-attacker-key-attacker-key'
    assertRefused(t, await bearer(app, forge(userClaims(), { secret: wrong, header: { kid: '../../../../dev/null', jku: 'http://127.0.0.1:1/jwks.json' } })))
    assertRefused(t, await bearer(app, forge(userClaims(), { secret: wrong, header: { kid: "' OR 1=1 --", x5u: 'http://127.0.0.1:1/cert' } })))
  })

  t.test('refuses a token over 8192 characters, even when correctly signed', async (t) => {
    const big = forge(userClaims({ pad: 'x'.repeat(7000) }))
    t.ok(big.length > 8192)
    assertRefused(t, await bearer(app, big))
    const fits = forge(userClaims({ pad: 'x'.repeat(5000) }))
    t.ok(fits.length <= 8192)
    t.equal((await bearer(app, fits)).statusCode, 200)
  })

  t.test('refuses a refresh token where an access token is needed', async (t) => {
    const user = await loginAs(app)
    assertRefused(t, await bearer(app, user.refreshToken))
    assertRefused(t, await bearer(app, forge(userClaims({ type: 'refresh' }))))
  })

  t.test('refuses an access token where a refresh token is needed', async (t) => {
    const user = await loginAs(app)
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${user.accessToken}` } })
    assertRefused(t, res)
  })

  t.test('refuses user/service hybrids: a token with both sid and client_id, or neither', async (t) => {
    const id = randomUUID()
    assertRefused(t, await bearer(app, forge(userClaims({ client_id: id, sub: id }))))
    const claims = userClaims()
    delete claims.sid
    assertRefused(t, await bearer(app, forge(claims)))
    assertRefused(t, await bearer(app, forge({ ...claims, client_id: randomUUID() })), 'AUTH_INVALID_TOKEN', 'Bearer realm="api", error="invalid_token"')
  })

  t.test('matches the header scheme case-insensitively', async (t) => {
    const token = forge(userClaims())
    for (const value of [`bearer ${token}`, `BEARER ${token}`, `BeArEr ${token}`, `Bearer  ${token}`, ` Bearer ${token} `]) {
      const res = await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: value } })
      t.equal(res.statusCode, 200, JSON.stringify(value.slice(0, 10)))
    }
  })

  t.test('refuses another scheme, a missing token or extra parts with 401 AUTH_INVALID_TOKEN (never 400)', async (t) => {
    const token = forge(userClaims())
    for (const value of [`Basic ${Buffer.from('a:b').toString('base64')}`, 'Bearer', 'Bearer ', `Bearer ${token} extra`, 'Bearer a b', `Token ${token}`, token, `Bearer,${token}`, `Bearer\t${token}x y`]) {
      assertRefused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: value } }))
    }
  })

  t.test('requireScope answers 403 AUTH_INSUFFICIENT_SCOPE with an insufficient_scope challenge', async (t) => {
    const user = await loginAs(app)
    const res = await bearer(app, user.accessToken, '/test/admin')
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'AUTH_INSUFFICIENT_SCOPE')
    t.equal(res.json().statusCode, 403)
    t.equal(res.headers['www-authenticate'], 'Bearer realm="api", error="insufficient_scope"')
    t.equal((await bearer(app, user.accessToken, '/test/notes-read')).statusCode, 200)
    const readOnly = forge(userClaims({ scope: 'notes:write' }))
    t.equal((await bearer(app, readOnly, '/test/notes-read')).statusCode, 403)
  })

  t.test('requireScope without authenticate fails closed', async (t) => {
    const res = await bearer(app, forge(userClaims()), '/test/forgot-authenticate')
    t.equal(res.statusCode, 401)
  })

  t.test('never answers 5xx to garbage tokens', async (t) => {
    const h = b64({ alg: 'HS256', typ: 'JWT' })
    const samples = [
      'a.b.c', `${h}.e30.`, `${h}.e30.e30`, `${h}.${b64('[]')}.x`, `${b64('null')}.${b64('{}')}.x`,
      `${b64('[]')}.${b64('{}')}.x`, `${b64({ alg: 123 })}.${b64(userClaims())}.x`,
      `${b64({ alg: 'HS256', b64: false, crit: ['b64'] })}.${b64(userClaims())}.x`,
      `${b64('{"alg":"HS256"')}.${b64(userClaims())}.x`,
      `${h}.${b64(userClaims({ exp: { $gt: 0 } }))}.x`,
      `${h}.${b64({ ...userClaims(), __proto__: { type: 'access' } })}.x`,
      forge(userClaims(), { header: { alg: 'HS256', crit: [] } }),
      forge(userClaims(), { header: { typ: 123 }, secret: 'y'.repeat(40) }),
      'x'.repeat(9000)
    ]
    for (let i = 0; i < 50; i++) samples.push(Buffer.from(Array.from({ length: 40 }, () => Math.floor(Math.random() * 256))).toString('base64url') + '.' + h + '.' + i)
    for (const token of samples) {
      const res = await bearer(app, token)
      t.equal(res.statusCode, 401, token.slice(0, 40))
    }
  })
})

t.test('with JWT_ISSUER and JWT_AUDIENCE set', async (t) => {
  const app = await build(t, { env: { ...ENV, JWT_ISSUER: 'https://auth.example.test', JWT_AUDIENCE: 'notes-api' }, routes: testRoutes })
  const good = { iss: 'https://auth.example.test', aud: 'notes-api' }

  t.test('puts iss and aud in the tokens it issues, and accepts them', async (t) => {
    const user = await loginAs(app)
    t.match(decode(user.accessToken).payload, good)
    t.match(decode(user.refreshToken).payload, good)
    t.equal((await bearer(app, user.accessToken)).statusCode, 200)
  })

  t.test('refuses a missing, wrong or array-valued iss or aud', async (t) => {
    const cases: Array<Record<string, unknown>> = [
      { aud: 'notes-api' },
      { iss: 'https://auth.example.test' },
      { ...good, iss: 'https://evil.example.test' },
      { ...good, aud: 'other-api' },
      { ...good, iss: ['https://evil.example.test', 'https://auth.example.test'] },
      { ...good, iss: ['https://auth.example.test'] },
      { ...good, aud: ['evil', 'notes-api'] },
      { ...good, aud: [] },
      { ...good, iss: 'https://auth.example.test.evil' },
      { ...good, iss: 'HTTPS://AUTH.EXAMPLE.TEST' }
    ]
    for (const claims of cases) assertRefused(t, await bearer(app, forge(userClaims(claims))))
    t.equal((await bearer(app, forge(userClaims(good)))).statusCode, 200)
  })
})

t.test('with another JWT_HEADER_NAME and an empty JWT_HEADER_TYPE', async (t) => {
  const app = await build(t, { env: { ...ENV, JWT_HEADER_NAME: 'X-Auth-Token', JWT_HEADER_TYPE: '' }, routes: testRoutes })

  t.test('reads the bare token from the configured header', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/test/whoami', headers: { 'x-auth-token': forge(userClaims()) } })
    t.equal(res.statusCode, 200)
  })

  t.test('refuses a prefixed token when the type is empty', async (t) => {
    assertRefused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { 'x-auth-token': `Bearer ${forge(userClaims())}` } }))
  })

  t.test('ignores the Authorization header', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: `Bearer ${forge(userClaims())}` } })
    assertRefused(t, res, 'AUTH_MISSING_TOKEN', 'Bearer realm="api"')
  })
})

t.test('with a custom JWT_HEADER_TYPE', async (t) => {
  const app = await build(t, { env: { ...ENV, JWT_HEADER_TYPE: 'JWT' }, routes: testRoutes })
  const token = forge(userClaims())
  t.equal((await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: `jwt ${token}` } })).statusCode, 200)
  assertRefused(t, await app.inject({ method: 'GET', url: '/test/whoami', headers: { authorization: `Bearer ${token}` } }))
})

t.test('with HS512 configured', async (t) => {
  const app = await build(t, { env: { ...ENV, JWT_ALGORITHM: 'HS512' }, routes: testRoutes })
  const user = await loginAs(app)
  t.equal(decode(user.accessToken).header.alg, 'HS512')
  t.ok(signedWith(user.accessToken, TEST_JWT_SECRET, 'HS512'))
  t.equal((await bearer(app, user.accessToken)).statusCode, 200)
  assertRefused(t, await bearer(app, forge(userClaims(), { alg: 'HS256' })), 'AUTH_INVALID_TOKEN')
})

t.test('key rotation with JWT_SECRET_KEY_PREVIOUS', async (t) => {
  const NEW_KEY = 'the-new-jwt-secret-key-after-rotation-0123456789'
  const app = await build(t, { env: { ...ENV, JWT_SECRET_KEY: NEW_KEY, JWT_SECRET_KEY_PREVIOUS: TEST_JWT_SECRET }, routes: testRoutes })

  t.test('still accepts tokens signed with the previous key', async (t) => {
    t.equal((await bearer(app, forge(userClaims(), { secret: TEST_JWT_SECRET }))).statusCode, 200)
  })

  t.test('signs new tokens with the current key only', async (t) => {
    const user = await loginAs(app)
    t.ok(signedWith(user.accessToken, NEW_KEY))
    t.notOk(signedWith(user.accessToken, TEST_JWT_SECRET))
    t.ok(signedWith(user.refreshToken, NEW_KEY))
    t.equal((await bearer(app, user.accessToken)).statusCode, 200)
  })

  t.test('applies every check to previous-key tokens too', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    assertRefused(t, await bearer(app, forge(userClaims({ exp: now - 60 }), { secret: TEST_JWT_SECRET })), 'AUTH_TOKEN_EXPIRED')
    assertRefused(t, await bearer(app, forge(userClaims({ type: 'refresh' }), { secret: TEST_JWT_SECRET })))
    assertRefused(t, await bearer(app, forge(userClaims(), { secret: TEST_JWT_SECRET, alg: 'HS512' })))
  })

  t.test('refuses a third key', async (t) => {
    assertRefused(t, await bearer(app, forge(userClaims(), { secret: 'a-third-key-that-was-never-configured-anywhere' })))
  })

  t.test('once the previous key is removed, its tokens are refused', async (t) => {
    const after = await build(t, { env: { ...ENV, JWT_SECRET_KEY: NEW_KEY }, routes: testRoutes })
    assertRefused(t, await bearer(after, forge(userClaims(), { secret: TEST_JWT_SECRET })))
  })
})
