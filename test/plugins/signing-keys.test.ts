import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, clientToken, loginAs } from '../helper.js'
import { TEST_SECRET_KEY, decode, forge, userClaims } from '../fixtures/jwt.js'
import { now, signed, testKey, trapServer } from '../fixtures/keys.js'

// Tokens signed with ES256 and EdDSA (docs/contract.md, "Signing keys"), attacked as
// jwt_tool would: alg none, HMAC keyed with the published public key, forged and
// missing kids, keys offered by the token itself (jku, x5u, jwk, x5c: never fetched).

function testRoutes (app: FastifyInstance): void {
  app.get('/test/whoami', { preParsing: app.authenticate }, async (request) => request.principal)
  app.get('/test/refresh', async (request) => app.readToken(request, 'refresh'))
}

function bearer (app: FastifyInstance, token: string, url = '/test/whoami'): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
}

function refused (t: Test, res: LightMyRequestResponse, code = 'AUTH_INVALID_TOKEN'): void {
  t.equal(res.statusCode, 401, res.body)
  t.equal(res.json().code, code)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token"')
}

for (const alg of ['ES256', 'EdDSA'] as const) {
  t.test(`JWT_ALGORITHM=${alg}`, async (t) => {
    const key = await testKey(alg)
    const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: key.pem }, routes: testRoutes })

    t.test('signs with the private key, kid = the RFC 7638 thumbprint, typ at+jwt on access and JWT on refresh tokens', async (t) => {
      const user = await loginAs(app)
      const access = decode(user.accessToken).header
      t.same(access, { alg, typ: 'at+jwt', kid: key.kid })
      t.same(decode(user.refreshToken).header, { alg, typ: 'JWT', kid: key.kid })
      t.equal((await bearer(app, user.accessToken)).statusCode, 200)
      t.equal((await bearer(app, user.refreshToken, '/test/refresh')).statusCode, 200)
      t.equal(app.signingKeys?.current.kid, key.kid)
    })

    t.test('accepts an access token whose typ is JWT, application/at+jwt or absent (Flask clients)', async (t) => {
      for (const header of [{ typ: 'JWT' }, { typ: 'application/at+jwt' }, { typ: 'AT+JWT' }, {}]) {
        t.equal((await bearer(app, await signed(key, userClaims(), { kid: key.kid, ...header }))).statusCode, 200, JSON.stringify(header))
      }
    })

    t.test('refuses a refresh token typed at+jwt, and any other typ', async (t) => {
      refused(t, await bearer(app, await signed(key, userClaims({ type: 'refresh' }), { kid: key.kid, typ: 'at+jwt' }), '/test/refresh'))
      for (const typ of ['dpop+jwt', 'secevent+jwt', 'JWE']) refused(t, await bearer(app, await signed(key, userClaims(), { kid: key.kid, typ })))
    })

    t.test('refuses a token signed with the key but without a kid, or with a kid that is not ours', async (t) => {
      refused(t, await bearer(app, await signed(key, userClaims())))
      for (const kid of ['unknown', key.kid.toLowerCase() === key.kid ? key.kid.toUpperCase() : key.kid.toLowerCase(), '../../../../dev/null', "' OR 1=1 --", `${key.kid} `]) {
        refused(t, await bearer(app, await signed(key, userClaims(), { kid })))
      }
    })

    t.test('refuses alg none, in any casing, with our kid', async (t) => {
      for (const none of ['none', 'None', 'NONE']) {
        refused(t, await bearer(app, forge(userClaims(), { alg: none, signature: '', header: { kid: key.kid } })))
      }
    })

    t.test('refuses HMAC tokens keyed with the published public key (algorithm confusion)', async (t) => {
      const publicJwk = JSON.stringify(app.signingKeys?.jwks.keys[0])
      for (const secret of [key.publicPem, key.publicPem.trim(), publicJwk, String(key.jwk.x)]) {
        for (const hs of ['HS256', 'HS384', 'HS512']) refused(t, await bearer(app, forge(userClaims(), { alg: hs, secret, header: { kid: key.kid } })))
      }
    })

    t.test('refuses a token signed by another key under our kid, or with another algorithm', async (t) => {
      const attacker = await testKey(alg)
      refused(t, await bearer(app, await signed(attacker, userClaims(), { kid: key.kid })))
      const other = await testKey(alg === 'ES256' ? 'EdDSA' : 'ES256')
      refused(t, await bearer(app, await signed(other, userClaims(), { kid: key.kid })))
      const rsa = await testKey('RS256')
      refused(t, await bearer(app, await signed(rsa, userClaims(), { kid: key.kid })))
    })

    t.test('never fetches or trusts jku, x5u, jwk or x5c, whatever the kid', async (t) => {
      const trap = await trapServer(t)
      const attacker = await testKey(alg)
      const offered = { jku: `${trap.url}/jwks.json`, x5u: `${trap.url}/cert.pem`, jwk: attacker.jwk, x5c: ['MIIBfake'] }
      for (const kid of [attacker.kid, key.kid, undefined]) {
        refused(t, await bearer(app, await signed(attacker, userClaims(), { ...offered, ...(kid ? { kid } : {}) })))
      }
      // With our own key and kid, the extra headers change nothing: they are ignored.
      t.equal((await bearer(app, await signed(key, userClaims(), { kid: key.kid, ...offered }))).statusCode, 200)
      await new Promise((resolve) => setTimeout(resolve, 200))
      t.same(trap.requests, [], 'nothing was fetched')
    })

    t.test('keeps every other check: expiry, future nbf, claims, crit', async (t) => {
      refused(t, await bearer(app, await signed(key, userClaims({ exp: now() - 60 }), { kid: key.kid })), 'AUTH_TOKEN_EXPIRED')
      refused(t, await bearer(app, await signed(key, userClaims({ nbf: now() + 60 }), { kid: key.kid })))
      refused(t, await bearer(app, await signed(key, userClaims({ exp: '123' }), { kid: key.kid })))
      refused(t, await bearer(app, await signed(key, userClaims({ type: 'refresh' }), { kid: key.kid })))
      refused(t, await bearer(app, forge(userClaims(), { alg, signature: 'c2ln', header: { kid: key.kid } })))
    })

    t.test('service-client tokens carry client_id', async (t) => {
      const token = await clientToken(app, { scopes: ['notes:read'] })
      const { header, payload } = decode(token)
      t.same(header, { alg, typ: 'at+jwt', kid: key.kid })
      t.equal(payload.client_id, payload.sub)
      t.equal((await bearer(app, token)).statusCode, 200)
    })
  })
}

t.test('service-client tokens carry aud when JWT_AUDIENCE is set (RFC 9068 §2.2)', async (t) => {
  const key = await testKey('ES256')
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: key.pem, JWT_AUDIENCE: 'notes-api', JWT_ISSUER: 'https://auth.example.test' }, routes: testRoutes })
  const { payload } = decode(await clientToken(app, { scopes: ['notes:read'] }))
  t.match(payload, { aud: 'notes-api', iss: 'https://auth.example.test', client_id: payload.sub })
})

t.test('rotation with JWT_PRIVATE_KEY_PREVIOUS', async (t) => {
  const old = await testKey('ES256')
  const next = await testKey('ES256')
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: next.pem, JWT_PRIVATE_KEY_PREVIOUS: old.pem }, routes: testRoutes })

  t.test('tokens of the previous key still verify, by its kid', async (t) => {
    t.equal((await bearer(app, await signed(old, userClaims(), { kid: old.kid }))).statusCode, 200)
  })

  t.test('the previous key never signs', async (t) => {
    const user = await loginAs(app)
    t.equal(decode(user.accessToken).header.kid, next.kid)
    t.equal(decode(user.refreshToken).header.kid, next.kid)
  })

  t.test('a kid chooses its key: the previous kid on a token of the current key is refused, and the reverse', async (t) => {
    refused(t, await bearer(app, await signed(next, userClaims(), { kid: old.kid })))
    refused(t, await bearer(app, await signed(old, userClaims(), { kid: next.kid })))
  })

  t.test('once the previous key is removed, its tokens are refused', async (t) => {
    const after = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: next.pem }, routes: testRoutes })
    refused(t, await bearer(after, await signed(old, userClaims(), { kid: old.kid })))
    t.equal((await bearer(after, await signed(next, userClaims(), { kid: next.kid }))).statusCode, 200)
  })

  t.test('the previous key may be of the other algorithm (ES256 → EdDSA)', async (t) => {
    const ed = await testKey('EdDSA')
    const migrated = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ed.pem, JWT_PRIVATE_KEY_PREVIOUS: next.pem }, routes: testRoutes })
    t.equal((await bearer(migrated, await signed(next, userClaims(), { kid: next.kid }))).statusCode, 200, 'an ES256 token of the previous key')
    t.equal(decode((await loginAs(migrated)).accessToken).header.alg, 'EdDSA')
    refused(t, await bearer(migrated, await signed(ed, userClaims(), { kid: next.kid, alg: 'EdDSA' })))
  })
})

t.test('rotation without a failed request: the new key is published (as the previous one) before it signs', async (t) => {
  const old = await testKey('ES256')
  const next = await testKey('ES256')
  const env = { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: 'ES256' }
  // Step 1 on every replica: the new key verifies and is published, the old one still signs.
  const before = await build(t, { env: { ...env, JWT_PRIVATE_KEY: old.pem }, routes: testRoutes })
  const step1 = await build(t, { env: { ...env, JWT_PRIVATE_KEY: old.pem, JWT_PRIVATE_KEY_PREVIOUS: next.pem }, routes: testRoutes })
  // Step 2, rolled out while step-1 replicas still serve: the new key signs, the old one verifies.
  const step2 = await build(t, { env: { ...env, JWT_PRIVATE_KEY: next.pem, JWT_PRIVATE_KEY_PREVIOUS: old.pem }, routes: testRoutes })
  const tokens = { before: (await loginAs(before)).accessToken, step1: (await loginAs(step1)).accessToken, step2: (await loginAs(step2)).accessToken }
  for (const [signer, token] of Object.entries(tokens)) {
    for (const [name, replica] of Object.entries({ step1, step2 })) {
      t.equal((await bearer(replica, token)).statusCode, 200, `a token of the ${signer} replica verifies on a ${name} replica`)
    }
  }
  t.same((await step1.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid), [old.kid, next.kid], 'step 1 already publishes the new key')
})

t.test('without JWT_PRIVATE_KEY outside production, a key that lives only in the process signs, with a warning', async (t) => {
  const logs: object[] = []
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: 'EdDSA' }, logs, routes: testRoutes })
  const user = await loginAs(app)
  t.equal(decode(user.accessToken).header.alg, 'EdDSA')
  t.equal((await bearer(app, user.accessToken)).statusCode, 200)
  t.ok(logs.some((l) => (l as { level: number, msg: string }).level === 40 && /JWT_PRIVATE_KEY is not set/.test((l as { msg: string }).msg)), 'a warning says so')
})

t.test('with HMAC (the default), access tokens are typed at+jwt and refresh tokens JWT, with no kid', async (t) => {
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY }, routes: testRoutes })
  const user = await loginAs(app)
  t.same(decode(user.accessToken).header, { alg: 'HS256', typ: 'at+jwt' })
  t.same(decode(user.refreshToken).header, { alg: 'HS256', typ: 'JWT' })
  t.equal(app.signingKeys, null)
})
