import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, injectAs, productionEnv } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY, decode, forge } from '../fixtures/jwt.js'
import { signed, testKey, trapServer } from '../fixtures/keys.js'
import { startIssuer, type Issuer } from '../fixtures/oidc-issuer.js'

// Federated clients (workload identity, docs/contract.md "Client assertions and
// workload identity") against a real OIDC issuer started here, whose tokens are
// shaped exactly like a Kubernetes API server's projected service account tokens.
// Every issuer counts the requests it gets: the tests assert who was contacted.

const US = 'https://notes.example.test'
const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY, JWT_ISSUER: US }
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const SUBJECT = 'system:serviceaccount:billing:api'
const DISCOVERY = '/.well-known/openid-configuration'
const JWKS = '/openid/v1/jwks'

function tokenRequest (app: FastifyInstance, assertion: string, extra: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: assertion, ...extra }).toString()
  })
}

async function federatedClient (app: FastifyInstance, issuer: Issuer | string, options: { subject?: string, jwksUri?: string } = {}): Promise<string> {
  const url = typeof issuer === 'string' ? issuer : issuer.url
  const client = await app.repos.clients.createFederated(`workload-${Math.random().toString(36).slice(2, 10)}`, ['notes:read'], { issuer: url, subject: options.subject ?? SUBJECT, jwksUri: options.jwksUri })
  return client.id
}

function invalidClient (t: Test, res: LightMyRequestResponse, what: string): void {
  t.equal(res.statusCode, 401, `${what}: ${res.body}`)
  t.same(res.json(), { error: 'invalid_client', error_description: 'Client authentication failed' }, what)
}

t.test('a Kubernetes service account token authenticates its workload', async (t) => {
  const logs: object[] = []
  const issuer = await startIssuer(t)
  const app = await build(t, { env: ENV, logs })
  const clientId = await federatedClient(app, issuer)

  t.test('is accepted, through the issuer\'s discovery document and JWK set, once each', async (t) => {
    const res = await tokenRequest(app, await issuer.token({ audience: US }))
    t.equal(res.statusCode, 200, res.body)
    t.equal(decode(res.json().access_token).payload.client_id, clientId)
    t.equal((await injectAs(app, res.json().access_token, { method: 'GET', url: '/auth/me' })).json().client_id, clientId)
    t.equal(issuer.count(DISCOVERY), 1)
    t.equal(issuer.count(JWKS), 1)
  })

  t.test('the same token again, and a client_id naming the client: no jti check, no new fetch', async (t) => {
    const token = await issuer.token({ audience: [US, 'https://kubernetes.default.svc'] })
    t.equal((await tokenRequest(app, token)).statusCode, 200)
    t.equal((await tokenRequest(app, token, { client_id: clientId })).statusCode, 200)
    t.same([issuer.count(DISCOVERY), issuer.count(JWKS)], [1, 1], 'the keys are cached')
  })

  t.test('refuses tokens about someone else, for someone else, or out of date', async (t) => {
    const cases: Array<[string, Promise<string>]> = [
      ['another audience', issuer.token({ audience: 'https://kubernetes.default.svc' })],
      ['no audience', issuer.token({})],
      ['another service account', issuer.token({ audience: US, serviceAccount: 'web' })],
      ['another namespace', issuer.token({ audience: US, namespace: 'frontend' })],
      ['expired', issuer.token({ audience: US, lifetime: -60, claims: { iat: Math.floor(Date.now() / 1000) - 3600, nbf: Math.floor(Date.now() / 1000) - 3600 } })],
      ['not yet valid', issuer.token({ audience: US, claims: { nbf: Math.floor(Date.now() / 1000) + 600 } })],
      ['no exp', issuer.token({ audience: US, claims: { exp: undefined } })],
      ['another issuer named', issuer.token({ audience: US, claims: { iss: 'https://kubernetes.default.svc.cluster.local' } })]
    ]
    for (const [what, token] of cases) invalidClient(t, await tokenRequest(app, await token), what)
    invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US }), { client_id: '00000000-0000-4000-8000-000000000000' }), 'a client_id of another client')
  })

  t.test('refuses forged tokens: another key, alg none, HMAC keyed with the issuer\'s public key', async (t) => {
    const attacker = await testKey('RS256')
    invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US, key: attacker, header: { kid: issuer.key.kid } })), 'an attacker\'s key under the issuer\'s kid')
    const claims = decode(await issuer.token({ audience: US })).payload
    invalidClient(t, await tokenRequest(app, forge(claims, { alg: 'none', signature: '', header: { kid: issuer.key.kid } })), 'alg none')
    invalidClient(t, await tokenRequest(app, forge(claims, { alg: 'HS256', secret: issuer.key.publicPem, header: { kid: issuer.key.kid } })), 'HS256 keyed with the public key')
  })

  t.test('an unknown kid refreshes the keys at most once per 30 s: a second one fetches nothing', async (t) => {
    const before = issuer.count(JWKS)
    const stranger = await testKey('RS256')
    invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US, key: stranger })), 'a kid the issuer never published')
    invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US, key: await testKey('RS256') })), 'another one')
    t.ok(issuer.count(JWKS) - before <= 1, `${issuer.count(JWKS) - before} fetch(es) of the JWK set for two unknown kids`)
  })

  t.test('never fetches jku, x5u, jwk or x5c', async (t) => {
    const trap = await trapServer(t)
    const attacker = await testKey('RS256')
    const token = await signed(attacker, decode(await issuer.token({ audience: US })).payload, { kid: attacker.kid, jku: `${trap.url}/jwks`, x5u: `${trap.url}/x5u`, jwk: attacker.jwk, x5c: ['MIIfake'] })
    invalidClient(t, await tokenRequest(app, token), 'keys offered by the token')
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.same(trap.requests, [])
  })

  t.test('an issuer nobody registered is never contacted', async (t) => {
    const stranger = await startIssuer(t)
    invalidClient(t, await tokenRequest(app, await stranger.token({ audience: US })), 'unregistered issuer')
    t.same(stranger.requests, [], 'no request reached it')
  })

  t.test('the log says why; the answer does not', async (t) => {
    logs.length = 0
    invalidClient(t, await tokenRequest(app, await issuer.token({ audience: 'https://kubernetes.default.svc' })), 'wrong aud')
    t.match(logs.find((l) => (l as { event?: string }).event === 'client.auth.failed'), { level: 40, clientId, reason: /aud/ })
  })
})

t.test('with JWT_AUDIENCE set, the token must be for that audience', async (t) => {
  const issuer = await startIssuer(t)
  const app = await build(t, { env: { ...ENV, JWT_AUDIENCE: 'notes-api' } })
  await federatedClient(app, issuer)
  t.equal((await tokenRequest(app, await issuer.token({ audience: 'notes-api' }))).statusCode, 200)
  invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US })), 'JWT_ISSUER is not the audience then')
})

t.test('FEDERATION_ALLOWED_ISSUERS bounds which issuers are ever contacted', async (t) => {
  const allowed = await startIssuer(t)
  const outside = await startIssuer(t)
  const app = await build(t, { env: { ...ENV, FEDERATION_ALLOWED_ISSUERS: `https://other.example.test,${allowed.url}` } })
  await federatedClient(app, allowed)
  // Registered before the list was narrowed (the command refuses it now): still never contacted.
  await federatedClient(app, outside)
  t.equal((await tokenRequest(app, await allowed.token({ audience: US }))).statusCode, 200)
  invalidClient(t, await tokenRequest(app, await outside.token({ audience: US })), 'outside the list')
  t.same(outside.requests, [], 'no request reached the issuer outside the list')
})

t.test('in production without FEDERATION_ALLOWED_ISSUERS no issuer is contacted', async (t) => {
  const issuer = await startIssuer(t)
  const app = await build(t, { env: { ...await productionEnv(), JWT_ISSUER: US, LOG_LEVEL: 'silent' } })
  await federatedClient(app, issuer)
  invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US })), 'production, no list')
  t.same(issuer.requests, [])
})

t.test('a JWK set that is slow, down, garbage, huge or a redirect fails closed, quickly, and is not asked again at once', async (t) => {
  const app = await build(t, { env: ENV })
  const trap = await trapServer(t)
  for (const behaviour of ['slow', 'error', 'garbage', 'not-a-set', 'huge', 'redirect'] as const) {
    const issuer = await startIssuer(t)
    issuer.jwksBehaviour = behaviour
    issuer.redirectTo = `${trap.url}/jwks`
    await federatedClient(app, issuer)
    const started = Date.now()
    invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US })), behaviour)
    const ms = Date.now() - started
    t.ok(ms < 4000, `${behaviour}: answered in ${ms} ms`)
    invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US })), `${behaviour}, again`)
    t.equal(issuer.count(JWKS), 1, `${behaviour}: the JWK set was asked once, not once per request`)
    if (behaviour === 'huge') t.ok(issuer.hugeBytesWritten < 10 * 1024 * 1024, `huge: the download stopped after ${issuer.hugeBytesWritten} bytes of 10 MB`)
  }
  t.same(trap.requests, [], 'the redirect was not followed')
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'the service still serves')
})

t.test('a discovery document that names another issuer is refused, and its key set never fetched', async (t) => {
  const app = await build(t, { env: ENV })
  const issuer = await startIssuer(t)
  issuer.discoveryIssuer = 'https://kubernetes.default.svc.cluster.local'
  await federatedClient(app, issuer)
  invalidClient(t, await tokenRequest(app, await issuer.token({ audience: US })), 'mixed-up issuer')
  t.equal(issuer.count(JWKS), 0)
})

t.test('with --jwks-uri the discovery document is not needed', async (t) => {
  const app = await build(t, { env: ENV })
  const issuer = await startIssuer(t)
  await federatedClient(app, issuer, { jwksUri: `${issuer.url}${JWKS}` })
  t.equal((await tokenRequest(app, await issuer.token({ audience: US }))).statusCode, 200)
  t.same([issuer.count(DISCOVERY), issuer.count(JWKS)], [0, 1])
})
