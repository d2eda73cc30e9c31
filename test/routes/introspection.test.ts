import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import * as oauth from 'oauth4webapi'
import { build, clientToken, createServiceClient, injectAs, loginAs, type TestClient } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY, forge, userClaims, decode } from '../fixtures/jwt.js'
import { assertionClaims, now, signed, testKey } from '../fixtures/keys.js'
import { parseClientJwks } from '../../lib/client-keys.js'
import { USER_SCOPES } from '../../schemas/auth.js'

// POST /auth/introspect (RFC 7662) and POST /auth/revoke (RFC 7009), docs/contract.md
// "Introspection and revocation": callable by any active service client, any method.

const ISSUER = 'https://auth.example.test'
const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY, JWT_ISSUER: ISSUER }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const basic = (c: TestClient) => `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`

function call (app: FastifyInstance, url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, payload: new URLSearchParams(fields).toString(), headers: { ...FORM, ...headers } })
}

function inactive (t: Test, res: LightMyRequestResponse, what: string): void {
  t.equal(res.statusCode, 200, `${what}: ${res.body}`)
  t.same(res.json(), { active: false }, `${what}: {"active":false} and nothing more`)
}

async function waitForRefusal (app: FastifyInstance, token: string, ms = 2000): Promise<{ code: string, after: number }> {
  const start = Date.now()
  for (;;) {
    const res = await injectAs(app, token, { method: 'GET', url: '/auth/me' })
    if (res.statusCode === 401 || Date.now() - start > ms) return { code: res.json().code ?? String(res.statusCode), after: Date.now() - start }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('POST /auth/introspect', async (t) => {
  const app = await build(t, { env: ENV })
  const caller = await createServiceClient(app, { name: 'resource-server', scopes: ['notes:read'] })
  const auth = { authorization: basic(caller) }

  t.test('describes a valid user access token, whoever it was issued to', async (t) => {
    const user = await loginAs(app)
    const res = await call(app, '/auth/introspect', { token: user.accessToken }, auth)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['cache-control'], 'no-store')
    const claims = decode(user.accessToken).payload
    t.same(res.json(), { active: true, scope: USER_SCOPES.join(' '), sub: user.userId, exp: claims.exp, iat: claims.iat, iss: ISSUER, token_type: 'access_token' })
  })

  t.test('describes a service token with its client_id, and a refresh token as such', async (t) => {
    const other = await createServiceClient(app, { scopes: ['notes:read'] })
    const token = await clientToken(app, { clientId: other.clientId })
    t.match((await call(app, '/auth/introspect', { token }, auth)).json(), { active: true, client_id: other.clientId, sub: other.clientId, token_type: 'access_token' })
    const user = await loginAs(app)
    t.match((await call(app, '/auth/introspect', { token: user.refreshToken, token_type_hint: 'refresh_token' }, auth)).json(), { active: true, sub: user.userId, token_type: 'refresh_token' })
    t.match((await call(app, '/auth/introspect', { token: user.accessToken, token_type_hint: 'refresh_token' }, auth)).json(), { active: true, token_type: 'access_token' }, 'the hint is only a hint')
  })

  t.test('answers {"active":false} for anything not valid now', async (t) => {
    const user = await loginAs(app)
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${user.refreshToken}` } })
    t.equal(refreshed.statusCode, 200)
    inactive(t, await call(app, '/auth/introspect', { token: user.refreshToken }, auth), 'a spent refresh token')
    t.equal((await call(app, '/auth/introspect', { token: refreshed.json().refresh_token }, auth)).json().active, true, 'its successor is active')
    const loggedOut = await loginAs(app)
    await injectAs(app, loggedOut.accessToken, { method: 'POST', url: '/auth/logout' })
    inactive(t, await call(app, '/auth/introspect', { token: loggedOut.accessToken }, auth), 'a token of a logged-out session')
    inactive(t, await call(app, '/auth/introspect', { token: forge(userClaims({ exp: now() - 60, iss: ISSUER })) }, auth), 'expired')
    inactive(t, await call(app, '/auth/introspect', { token: forge(userClaims({ iss: ISSUER }), { secret: 'another-key-another-key-another-key-0123' }) }, auth), 'badly signed')
    inactive(t, await call(app, '/auth/introspect', { token: forge(userClaims({ iss: 'https://elsewhere.example.test' })) }, auth), 'another issuer\'s')
    inactive(t, await call(app, '/auth/introspect', { token: forge(userClaims({ iss: ISSUER }), { alg: 'none', signature: '' }) }, auth), 'alg none')
    for (const garbage of ['garbage', 'a.b.c', 'x'.repeat(9000)]) inactive(t, await call(app, '/auth/introspect', { token: garbage }, auth), garbage.slice(0, 10))
  })

  t.test('takes JSON bodies too', async (t) => {
    const user = await loginAs(app)
    const res = await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token: user.accessToken }, headers: auth })
    t.equal(res.json().active, true)
  })

  t.test('needs an active, authenticated service client: else 401 invalid_client', async (t) => {
    const user = await loginAs(app)
    const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
      ['no authentication', { token: user.accessToken }, {}],
      ['a wrong secret', { token: user.accessToken }, { authorization: basic({ ...caller, clientSecret: 'wrong' }) }],
      ['a user\'s bearer token', { token: user.accessToken }, { authorization: `Bearer ${user.accessToken}` }],
      ['only a client_id', { token: user.accessToken, client_id: caller.clientId }, {}]
    ]
    for (const [what, fields, headers] of cases) {
      const res = await call(app, '/auth/introspect', fields, headers)
      t.equal(res.statusCode, 401, what)
      t.equal(res.json().error, 'invalid_client', what)
    }
    const disabled = await createServiceClient(app, { scopes: ['notes:read'] })
    await app.repos.clients.disable(disabled.clientId)
    t.equal((await call(app, '/auth/introspect', { token: user.accessToken }, { authorization: basic(disabled) })).statusCode, 401, 'a disabled client')
  })

  t.test('accepts a private_key_jwt client (any method of /auth/token)', async (t) => {
    const key = await testKey('ES256')
    const client = await app.repos.clients.createWithKeys('rs-keys', ['notes:read'], await parseClientJwks(JSON.stringify({ keys: [key.jwk] })))
    const user = await loginAs(app)
    const res = await call(app, '/auth/introspect', {
      token: user.accessToken,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await signed(key, assertionClaims(client.id, `${ISSUER}/auth/token`), { kid: key.kid })
    })
    t.equal(res.json().active, true, res.body)
  })

  t.test('refuses a missing token or an unknown parameter with invalid_request', async (t) => {
    const bodies: Array<Record<string, string>> = [{}, { token: '' }, { token: 'x', username: 'admin' }]
    for (const fields of bodies) {
      const res = await call(app, '/auth/introspect', fields, auth)
      t.equal(res.statusCode, 400, JSON.stringify(fields))
      t.equal(res.json().error, 'invalid_request')
    }
  })
})

t.test('POST /auth/revoke', async (t) => {
  const logs: object[] = []
  const app = await build(t, { env: ENV, logs })
  const replica = await build(t, { env: ENV })
  const caller = await createServiceClient(app, { name: 'revoker', scopes: ['notes:read'] })
  const auth = { authorization: basic(caller) }

  t.test('revokes a token issued to the caller, on every replica within a second, and logs token.revoked', async (t) => {
    const token = await clientToken(app, { clientId: caller.clientId })
    t.equal((await injectAs(replica, token, { method: 'GET', url: '/auth/me' })).statusCode, 200, 'valid on the other replica first')
    logs.length = 0
    const res = await call(app, '/auth/revoke', { token }, auth)
    t.equal(res.statusCode, 200)
    t.equal(res.body, '', 'an empty body')
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal((await injectAs(app, token, { method: 'GET', url: '/auth/me' })).json().code, 'AUTH_TOKEN_REVOKED', 'refused at once here')
    const there = await waitForRefusal(replica, token)
    t.equal(there.code, 'AUTH_TOKEN_REVOKED')
    t.ok(there.after < 1000, `refused by the other replica ${there.after} ms later`)
    inactive(t, await call(app, '/auth/introspect', { token }, auth), 'and introspection says so')
    t.match(logs.find((l) => (l as { event?: string }).event === 'token.revoked'), { level: 30, clientId: caller.clientId, jti: decode(token).payload.jti })
    t.equal((await clientToken(app, { clientId: caller.clientId }).then((fresh) => injectAs(app, fresh, { method: 'GET', url: '/auth/me' }))).statusCode, 200, 'the client\'s other tokens still work')

    const later = await build(t, { env: ENV })
    t.equal((await injectAs(later, token, { method: 'GET', url: '/auth/me' })).json().code, 'AUTH_TOKEN_REVOKED', 'a replica started afterwards knows it too')
  })

  t.test('refuses, with invalid_request, a valid token of another client or of a user; it stays valid', async (t) => {
    const other = await clientToken(app, { scopes: ['notes:read'] })
    const user = await loginAs(app)
    for (const [what, token] of [['another client\'s', other], ['a user\'s access token', user.accessToken], ['a user\'s refresh token', user.refreshToken]] as const) {
      const res = await call(app, '/auth/revoke', { token }, auth)
      t.equal(res.statusCode, 400, what)
      t.equal(res.json().error, 'invalid_request', what)
    }
    t.equal((await injectAs(app, other, { method: 'GET', url: '/auth/me' })).statusCode, 200)
    t.equal((await injectAs(app, user.accessToken, { method: 'GET', url: '/auth/me' })).statusCode, 200)
  })

  t.test('answers 200 for unknown, invalid, expired or already revoked tokens (RFC 7009 §2.2)', async (t) => {
    const token = await clientToken(app, { clientId: caller.clientId })
    t.equal((await call(app, '/auth/revoke', { token }, auth)).statusCode, 200)
    for (const junk of [token, 'garbage', forge(userClaims({ exp: now() - 60, iss: ISSUER })), forge(userClaims({ iss: ISSUER }), { secret: 'another-key-another-key-another-key-0123' })]) {
      const res = await call(app, '/auth/revoke', { token: junk, token_type_hint: 'access_token' }, auth)
      t.equal(res.statusCode, 200, junk.slice(0, 10))
      t.equal(res.body, '')
    }
  })

  t.test('needs client authentication', async (t) => {
    const token = await clientToken(app, { clientId: caller.clientId })
    const res = await call(app, '/auth/revoke', { token })
    t.equal(res.statusCode, 401)
    t.equal(res.json().error, 'invalid_client')
    t.equal((await injectAs(app, token, { method: 'GET', url: '/auth/me' })).statusCode, 200)
  })

  t.test('expired revocations are cleaned up', async (t) => {
    await app.pg.query('INSERT INTO revoked_tokens (jti, client_id, expires_at) VALUES (gen_random_uuid(), $1, now() - interval \'2 days\')', [caller.clientId])
    t.ok(await app.repos.revokedTokens.prune() >= 1)
    const { rows } = await app.pg.query('SELECT count(*)::int AS n FROM revoked_tokens WHERE expires_at < now() - interval \'1 day\'')
    t.equal(rows[0].n, 0)
  })
})

t.test('introspection and revocation are rate limited like /auth/token, each with its own counter', async (t) => {
  const app = await build(t, { env: { ...ENV, RATE_LIMIT_AUTH_MAX: '1' } })
  await call(app, '/auth/introspect', { token: 'x' })
  const limited = await call(app, '/auth/introspect', { token: 'x' })
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'RATE_LIMITED', 'in the common error shape')
  t.not((await call(app, '/auth/revoke', { token: 'x' })).statusCode, 429, 'revocation counts on its own')
})

t.test('a stock client (oauth4webapi) introspects and revokes', async (t) => {
  const app = await build(t, { env: ENV })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const as = { issuer: ISSUER, introspection_endpoint: `${base}/auth/introspect`, revocation_endpoint: `${base}/auth/revoke` }
  const caller = await createServiceClient(app, { scopes: ['notes:read'] })
  const client = { client_id: caller.clientId }
  const clientAuth = oauth.ClientSecretPost(caller.clientSecret)
  const insecure = { [oauth.allowInsecureRequests]: true }
  const user = await loginAs(app)
  const described = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, clientAuth, user.accessToken, insecure))
  t.equal(described.active, true)
  t.equal(described.sub, user.userId)
  const own = await clientToken(app, { clientId: caller.clientId })
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, clientAuth, own, insecure))
  t.equal((await injectAs(app, own, { method: 'GET', url: '/auth/me' })).json().code, 'AUTH_TOKEN_REVOKED')
  const after = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, clientAuth, own, insecure))
  t.equal(after.active, false)
})
