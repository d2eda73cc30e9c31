import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import * as oauth from 'oauth4webapi'
import { build, clientToken, loginAs } from '../helper.js'
import { TEST_SECRET_KEY } from '../fixtures/jwt.js'
import { testKey } from '../fixtures/keys.js'
import { SCOPES } from '../../schemas/auth.js'

// GET /.well-known/jwks.json and GET /.well-known/oauth-authorization-server
// (docs/contract.md, "Signing keys"), read as other services read them: with jose's
// remote JWK set and oauth4webapi's discovery, over a listening server.

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

async function listening (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

t.test('GET /.well-known/jwks.json', async (t) => {
  const current = await testKey('ES256')
  const previous = await testKey('EdDSA')
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: current.pem, JWT_PRIVATE_KEY_PREVIOUS: previous.pem, RATE_LIMIT_MAX: '2' } })

  t.test('publishes the current and previous public keys, each with kty, crv, coordinates, kid, alg and use', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(res.json(), {
      keys: [
        { kty: 'EC', crv: 'P-256', x: current.jwk.x, y: current.jwk.y, kid: current.kid, alg: 'ES256', use: 'sig' },
        { kty: 'OKP', crv: 'Ed25519', x: previous.jwk.x, kid: previous.kid, alg: 'EdDSA', use: 'sig' }
      ]
    })
  })

  t.test('never publishes a private member', async (t) => {
    const { keys } = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as { keys: Array<Record<string, unknown>> }
    for (const key of keys) t.same(PRIVATE_MEMBERS.filter((m) => m in key), [], `no private member in ${String(key.kid)}`)
  })

  t.test('may be cached for five minutes, although every other response is no-store', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    t.equal(res.headers['cache-control'], 'public, max-age=300')
    t.equal((await app.inject({ method: 'GET', url: '/health/live' })).headers['cache-control'], 'no-store')
  })

  t.test('is not rate limited and needs no authentication', async (t) => {
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json', remoteAddress: '10.0.0.7' })
      t.equal(res.statusCode, 200)
      t.equal(res.headers['x-ratelimit-limit'], undefined)
    }
  })

  t.test('validates its query string like every route', async (t) => {
    t.equal((await app.inject({ method: 'GET', url: '/.well-known/jwks.json?x=1' })).statusCode, 400)
  })

  t.test('answers 404 for the metadata without JWT_ISSUER', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })
    t.equal(res.statusCode, 404)
    t.equal(res.json().code, 'NOT_FOUND')
  })
})

t.test('in HMAC mode there is nothing to publish: 404', async (t) => {
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ISSUER: 'https://auth.example.test' } })
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'NOT_FOUND')
  const metadata = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })
  t.equal(metadata.statusCode, 200)
  t.notOk('jwks_uri' in metadata.json(), 'no jwks_uri in HMAC mode')
})

for (const alg of ['ES256', 'EdDSA'] as const) {
  t.test(`jose's remote JWK set verifies our ${alg} tokens from our JWK set alone`, async (t) => {
    const key = await testKey(alg)
    const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: key.pem } })
    const base = await listening(app)
    const jwks = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`))
    const user = await loginAs(app)
    const { payload, protectedHeader } = await jwtVerify(user.accessToken, jwks, { algorithms: [alg], typ: 'at+jwt' })
    t.equal(payload.sub, user.userId)
    t.equal(protectedHeader.kid, key.kid)
    const service = await jwtVerify(await clientToken(app, { scopes: ['notes:read'] }), jwks, { algorithms: [alg] })
    t.equal(service.payload.client_id, service.payload.sub)
    await t.rejects(jwtVerify(user.accessToken, createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), { algorithms: ['RS256'] }), 'only the published algorithm')
  })
}

t.test('GET /.well-known/oauth-authorization-server (RFC 8414)', async (t) => {
  const key = await testKey('EdDSA')
  // The issuer is the listening address, as a deployment's is its public URL.
  const probe = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY } })
  const port = (await listening(probe), (probe.server.address() as AddressInfo).port)
  await probe.close()
  const issuer = `http://127.0.0.1:${port}`
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: key.pem, JWT_ISSUER: issuer, RATE_LIMIT_MAX: '1' } })
  await app.listen({ host: '127.0.0.1', port })

  t.test('describes this service exactly', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })
    t.equal(res.statusCode, 200)
    t.same(res.json(), {
      issuer,
      token_endpoint: `${issuer}/auth/token`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${issuer}/auth/introspect`,
      revocation_endpoint: `${issuer}/auth/revoke`,
      grant_types_supported: ['client_credentials'],
      response_types_supported: [],
      scopes_supported: Object.keys(SCOPES),
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      introspection_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      revocation_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519']
    })
    t.equal(res.headers['x-ratelimit-limit'], undefined, 'not rate limited')
  })

  t.test('oauth4webapi discovers it from the issuer URL alone, and gets a token with it', async (t) => {
    const response = await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true })
    const as = await oauth.processDiscoveryResponse(new URL(issuer), response)
    t.equal(as.token_endpoint, `${issuer}/auth/token`)
    const created = await app.repos.clients.create(`stock-${Date.now()}`, ['notes:read'])
    const client = { client_id: created.id }
    const grant = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(created.secret), new URLSearchParams({ scope: 'notes:read' }), { [oauth.allowInsecureRequests]: true })
    const tokens = await oauth.processClientCredentialsResponse(as, client, grant)
    t.equal(tokens.token_type, 'bearer')
    t.equal(tokens.scope, 'notes:read')
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(as.jwks_uri as string)), { issuer, algorithms: ['EdDSA'] })
    t.equal(payload.client_id, created.id)
  })
})

t.test('JWT_ISSUER with a trailing slash: endpoints are joined without a double slash', async (t) => {
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ISSUER: 'https://auth.example.test/svc/' } })
  const body = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()
  t.equal(body.issuer, 'https://auth.example.test/svc/')
  t.equal(body.token_endpoint, 'https://auth.example.test/svc/auth/token')
})

t.test('a JWT_ISSUER that is not an http(s) URL (allowed outside production) serves no metadata', async (t) => {
  const app = await build(t, { env: { SECRET_KEY: TEST_SECRET_KEY, JWT_ISSUER: 'notes-service' } })
  t.equal((await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).statusCode, 404)
})
