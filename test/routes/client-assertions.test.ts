import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { generateKeyPair, exportJWK, calculateJwkThumbprint } from 'jose'
import * as oauth from 'oauth4webapi'
import { build, createServiceClient, injectAs } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY, decode, forge } from '../fixtures/jwt.js'
import { assertionClaims, now, signed, testKey, trapServer, type TestKey } from '../fixtures/keys.js'
import { parseClientJwks } from '../../lib/client-keys.js'

// private_key_jwt (RFC 7523 §2.2) at POST /auth/token, attacked: every failure is the
// same 401 invalid_client, the reason only in the log; a replayed assertion is refused
// on every replica (two apps on one database here, as two pods share one).

const ISSUER = 'https://auth.example.test'
const TOKEN_ENDPOINT = `${ISSUER}/auth/token`
const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY, JWT_ISSUER: ISSUER }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

interface KeyClient { id: string, keys: TestKey[] }

async function keyClient (app: FastifyInstance, keys: TestKey[], options: { withoutKid?: boolean } = {}): Promise<KeyClient> {
  const jwks = { keys: keys.map((k) => (options.withoutKid ? { ...k.jwk, kid: undefined } : k.jwk)) }
  const stored = await parseClientJwks(JSON.stringify(jwks))
  const client = await app.repos.clients.createWithKeys(`keys-${Math.random().toString(36).slice(2, 10)}`, ['notes:read'], stored)
  return { id: client.id, keys }
}

function tokenRequest (app: FastifyInstance, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/token', payload: new URLSearchParams(fields).toString(), headers: { ...FORM, ...headers } })
}

function withAssertion (assertion: string, extra: Record<string, string> = {}): Record<string, string> {
  return { grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: assertion, ...extra }
}

async function assertion (client: KeyClient, overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key = client.keys[0] as TestKey): Promise<string> {
  return signed(key, assertionClaims(client.id, ISSUER, overrides), { kid: key.kid, ...header })
}

function invalidClient (t: Test, res: LightMyRequestResponse, what: string): void {
  t.equal(res.statusCode, 401, `${what}: ${res.body}`)
  t.same(res.json(), { error: 'invalid_client', error_description: 'Client authentication failed' }, `${what}: no detail of the failed check`)
  t.equal(res.headers['www-authenticate'], undefined)
  t.equal(res.headers['cache-control'], 'no-store')
}

t.test('private_key_jwt', async (t) => {
  const logs: object[] = []
  const app = await build(t, { env: ENV, logs })
  const replica = await build(t, { env: ENV })
  const es = await keyClient(app, [await testKey('ES256')])

  for (const alg of ['ES256', 'RS256', 'PS256', 'EdDSA', 'Ed25519'] as const) {
    t.test(`grants a token to an assertion signed with ${alg}`, async (t) => {
      const client = await keyClient(app, [await testKey(alg)])
      const res = await tokenRequest(app, withAssertion(await assertion(client)))
      t.equal(res.statusCode, 200, res.body)
      t.equal(decode(res.json().access_token).payload.client_id, client.id)
      const me = await injectAs(app, res.json().access_token, { method: 'GET', url: '/auth/me' })
      t.equal(me.json().client_id, client.id)
    })
  }

  t.test('accepts the issuer or the token endpoint URL as aud, and a client_id naming the same client', async (t) => {
    t.equal((await tokenRequest(app, withAssertion(await assertion(es, { aud: TOKEN_ENDPOINT })))).statusCode, 200)
    t.equal((await tokenRequest(app, withAssertion(await assertion(es, { aud: [ISSUER] })))).statusCode, 200)
    t.equal((await tokenRequest(app, withAssertion(await assertion(es), { client_id: es.id }))).statusCode, 200)
    t.equal((await tokenRequest(app, withAssertion(await assertion(es), { scope: 'notes:read' }))).json().scope, 'notes:read')
  })

  t.test('accepts an exp up to 5 minutes ahead', async (t) => {
    t.equal((await tokenRequest(app, withAssertion(await assertion(es, { exp: now() + 300 })))).statusCode, 200)
  })

  t.test('refuses a replayed assertion on the replica that saw it and on another one', async (t) => {
    const once = await assertion(es)
    t.equal((await tokenRequest(app, withAssertion(once))).statusCode, 200)
    invalidClient(t, await tokenRequest(app, withAssertion(once)), 'the same replica')
    invalidClient(t, await tokenRequest(replica, withAssertion(once)), 'a second replica')
    const other = await assertion(es)
    t.equal((await tokenRequest(replica, withAssertion(other))).statusCode, 200, 'first use on the second replica')
    invalidClient(t, await tokenRequest(app, withAssertion(other)), 'then the first replica')
    const { rows } = await app.pg.query('SELECT expires_at FROM used_client_assertions WHERE client_id = $1 AND jti = $2', [es.id, decode(other).payload.jti])
    t.ok(rows[0].expires_at.getTime() >= (decode(other).payload.exp as number) * 1000, 'kept at least until the assertion expires')
  })

  t.test('refuses alg none and HMAC assertions keyed with the registered public key', async (t) => {
    const claims = assertionClaims(es.id, ISSUER)
    const key = es.keys[0] as TestKey
    for (const alg of ['none', 'None']) invalidClient(t, await tokenRequest(app, withAssertion(forge(claims, { alg, signature: '', header: { kid: key.kid } }))), alg)
    for (const secret of [key.publicPem, JSON.stringify(key.jwk), String(key.jwk.x)]) {
      for (const alg of ['HS256', 'HS512']) invalidClient(t, await tokenRequest(app, withAssertion(forge(assertionClaims(es.id, ISSUER), { alg, secret, header: { kid: key.kid } }))), `${alg} keyed with the public key`)
    }
  })

  t.test('refuses an assertion signed by another key, under the client\'s kid or another one', async (t) => {
    const attacker = await testKey('ES256')
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion(es, {}, {}, attacker))), 'attacker key, its own kid')
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion(es, {}, { kid: es.keys[0]?.kid }, attacker))), 'attacker key, the client\'s kid')
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion(es, {}, { kid: 'no-such-kid' }))), 'the client\'s key, an unknown kid')
  })

  t.test('never fetches jku, x5u, jwk or x5c', async (t) => {
    const trap = await trapServer(t)
    const attacker = await testKey('ES256')
    const offered = { jku: `${trap.url}/jwks.json`, x5u: `${trap.url}/cert.pem`, jwk: attacker.jwk, x5c: ['MIIBfake'] }
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion(es, {}, offered, attacker))), 'keys offered by the assertion')
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion(es, {}, { ...offered, kid: undefined }, attacker))), 'and no kid')
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.same(trap.requests, [], 'nothing was fetched')
  })

  t.test('refuses expired, not-yet-valid, future and far-future assertions', async (t) => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['expired', { exp: now() - 60, iat: now() - 120, nbf: now() - 120 }],
      ['nbf in the future', { nbf: now() + 60, exp: now() + 120 }],
      ['iat in the future', { iat: now() + 60, exp: now() + 120 }],
      ['exp more than 5 minutes ahead', { exp: now() + 600 }],
      ['exp a year ahead', { exp: now() + 365 * 86400 }],
      ['no exp', { exp: undefined }]
    ]
    for (const [what, overrides] of cases) invalidClient(t, await tokenRequest(app, withAssertion(await assertion(es, overrides))), what)
  })

  t.test('refuses a wrong aud, iss or sub, and a missing or oversized jti', async (t) => {
    const other = await createServiceClient(app, { scopes: ['notes:read'] })
    const cases: Array<[string, Record<string, unknown>]> = [
      ['another audience', { aud: 'https://elsewhere.example.test' }],
      ['the issuer with a trailing slash', { aud: `${ISSUER}/` }],
      ['two audiences', { aud: [ISSUER, 'https://elsewhere.example.test'] }],
      ['no aud', { aud: undefined }],
      ['iss of another client', { iss: other.clientId }],
      ['sub of another client', { sub: other.clientId }],
      ['iss and sub of another client', { iss: other.clientId, sub: other.clientId }],
      ['no jti', { jti: undefined }],
      ['a numeric jti', { jti: 42 }],
      ['a jti of 201 characters', { jti: 'x'.repeat(201) }],
      ['a jti holding U+0000 (the database could not store it)', { jti: 'a\u0000b' }],
      ['an iss holding U+0000', { iss: 'https://a.test/\u0000' }],
      ['an iss of 3000 characters', { iss: `https://a.test/${'x'.repeat(3000)}` }]
    ]
    for (const [what, overrides] of cases) invalidClient(t, await tokenRequest(app, withAssertion(await assertion(es, overrides))), what)
  })

  t.test('refuses unknown, disabled and secret clients, and a client_id naming another client', async (t) => {
    const unknown = { id: '00000000-0000-4000-8000-000000000000', keys: es.keys }
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion(unknown))), 'unknown client')
    const secretClient = await createServiceClient(app, { scopes: ['notes:read'] })
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion({ id: secretClient.clientId, keys: es.keys }))), 'a client registered with a secret')
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion(es), { client_id: secretClient.clientId })), 'client_id of another client')
    const disabled = await keyClient(app, [await testKey('EdDSA')])
    await app.repos.clients.disable(disabled.id)
    invalidClient(t, await tokenRequest(app, withAssertion(await assertion(disabled))), 'disabled client')
    invalidClient(t, await tokenRequest(app, withAssertion('not.a.jwt')), 'garbage')
    invalidClient(t, await tokenRequest(app, withAssertion('a')), 'not even three parts')
  })

  t.test('a client with keys has no secret', async (t) => {
    const res = await tokenRequest(app, { grant_type: 'client_credentials', client_id: es.id, client_secret: 'anything' })
    t.equal(res.statusCode, 401)
    t.equal(res.json().error, 'invalid_client')
  })

  t.test('refuses two authentication methods, or an assertion without its type, with invalid_request', async (t) => {
    const a = await assertion(es)
    const cases: Array<[Record<string, string>, Record<string, string>]> = [
      [withAssertion(a, { client_secret: 'x' }), {}],
      [withAssertion(a), { authorization: `Basic ${Buffer.from(`${es.id}:x`).toString('base64')}` }],
      [{ grant_type: 'client_credentials', client_assertion: a }, {}],
      [{ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER }, {}],
      [withAssertion(a, { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' }), {}]
    ]
    for (const [fields, headers] of cases) {
      const res = await tokenRequest(app, fields, headers)
      t.equal(res.statusCode, 400, res.body)
      t.equal(res.json().error, 'invalid_request')
    }
  })

  t.test('tries each registered key when the assertion names none', async (t) => {
    const first = await testKey('ES256')
    const second = await testKey('ES256')
    const client = await keyClient(app, [first, second], { withoutKid: true })
    const res = await tokenRequest(app, withAssertion(await signed(second, assertionClaims(client.id, ISSUER))))
    t.equal(res.statusCode, 200, res.body)
  })

  t.test('logs why, as client.auth.failed at warn, and never the assertion', async (t) => {
    const a = await assertion(es, { aud: 'https://elsewhere.example.test' })
    logs.length = 0
    invalidClient(t, await tokenRequest(app, withAssertion(a)), 'wrong aud')
    const event = logs.find((l) => (l as { event?: string }).event === 'client.auth.failed') as Record<string, unknown> | undefined
    t.match(event, { level: 40, method: 'client_assertion', clientId: es.id, reason: /aud/ })
    t.notOk(JSON.stringify(logs).includes(a), 'the assertion is not logged')
  })
})

t.test('without JWT_ISSUER there is no audience to check: private_key_jwt is refused', async (t) => {
  const logs: object[] = []
  const app = await build(t, { env: { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY }, logs })
  const client = await keyClient(app, [await testKey('ES256')])
  invalidClient(t, await tokenRequest(app, withAssertion(await assertion(client))), 'no JWT_ISSUER')
  t.ok(logs.some((l) => /JWT_ISSUER is not set/.test(String((l as { reason?: string }).reason))))
})

t.test('expired assertion ids are cleaned up', async (t) => {
  const app = await build(t, { env: ENV })
  const client = await keyClient(app, [await testKey('ES256')])
  t.equal(await app.repos.clientAssertions.use(client.id, 'old', new Date(Date.now() - 120_000)), true)
  t.equal(await app.repos.clientAssertions.use(client.id, 'live', new Date(Date.now() + 120_000)), true)
  t.equal(await app.repos.clientAssertions.use(client.id, 'live', new Date(Date.now() + 120_000)), false, 'a second use is a replay')
  t.ok(await app.repos.clientAssertions.prune() >= 1)
  const { rows } = await app.pg.query('SELECT jti FROM used_client_assertions WHERE client_id = $1 ORDER BY jti', [client.id])
  t.same(rows.map((r) => r.jti), ['live'], 'the expired one is gone, the live one kept')
})

t.test('a password grant is unsupported_grant_type, whatever fields come with it', async (t) => {
  const app = await build(t, { env: ENV })
  const client = await createServiceClient(app, { scopes: ['notes:read'] })
  const basic = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`
  const grants: Array<Record<string, string>> = [
    { grant_type: 'password', username: 'admin@example.test', password: 'hunter2hunter2' },
    { grant_type: 'authorization_code', code: 'x', redirect_uri: 'https://x.test/cb' }
  ]
  for (const fields of grants) {
    const res = await tokenRequest(app, fields, { authorization: basic })
    t.equal(res.statusCode, 400, res.body)
    t.equal(res.json().error, 'unsupported_grant_type')
    const anonymous = await tokenRequest(app, fields)
    t.equal(anonymous.json().error, 'unsupported_grant_type', 'before client authentication too')
  }
  t.equal((await tokenRequest(app, { grant_type: 'client_credentials', username: 'admin' }, { authorization: basic })).json().error, 'invalid_request', 'an unknown field of a supported grant is still refused')
})

t.test('a stock client (oauth4webapi) authenticates with private_key_jwt, by discovery', async (t) => {
  const probe = await build(t, { env: ENV })
  await probe.listen({ host: '127.0.0.1', port: 0 })
  const port = (probe.server.address() as AddressInfo).port
  await probe.close()
  const issuer = `http://127.0.0.1:${port}`
  const app = await build(t, { env: { ...ENV, JWT_ISSUER: issuer } })
  await app.listen({ host: '127.0.0.1', port })
  const as = await oauth.processDiscoveryResponse(new URL(issuer), await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }))

  for (const alg of ['ES256', 'Ed25519', 'RS256', 'PS256'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg)
    const jwk = await exportJWK(publicKey)
    const kid = await calculateJwkThumbprint(jwk)
    const stored = await parseClientJwks(JSON.stringify({ keys: [{ ...jwk, kid }] }))
    const created = await app.repos.clients.createWithKeys(`stock-${alg}`, ['notes:read'], stored)
    const client = { client_id: created.id }
    const auth = oauth.PrivateKeyJwt({ key: privateKey, kid })
    const response = await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams(), { [oauth.allowInsecureRequests]: true })
    const tokens = await oauth.processClientCredentialsResponse(as, client, response)
    t.equal(decode(tokens.access_token).payload.client_id, created.id, `${alg}: a token for the client`)
    const replay = await oauth.clientCredentialsGrantRequest(as, client, oauth.PrivateKeyJwt({ key: privateKey, kid }), new URLSearchParams(), { [oauth.allowInsecureRequests]: true })
    t.equal(replay.status, 200, `${alg}: each request carries a fresh jti`)
  }
})
