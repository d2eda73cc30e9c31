import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { GENEROUS_LIMITS, createTestDatabase, productionEnv } from '../helper.js'
import { ROOT } from '../fixtures/deploy/dockerfile.js'
import { freePort, startNode, waitReady } from '../fixtures/deploy/process.js'
import { assertionClaims, signed, testKey } from '../fixtures/keys.js'
import { parseClientJwks } from '../../lib/client-keys.js'
import pg from 'pg'

// Two replicas of the real entry point (node dist/server.js, production, ES256) on one
// database, as a Deployment runs them: one key set published by both, a token of one
// verified by the other and by jose, a client assertion used on one refused on the
// other, and a token revoked on one refused by the other within a second.

const SERVER = join(ROOT, 'dist', 'server.js')
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

t.test('replicas share keys, assertion ids and revocations', async (t) => {
  const databaseUrl = await createTestDatabase()
  const key = await testKey('ES256')
  const issuer = 'https://notes.example.test'
  const env = { ...await productionEnv({ DATABASE_URL: databaseUrl }), ...GENEROUS_LIMITS, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: key.pem, JWT_ISSUER: issuer, DATABASE_POOL_MAX: '3', HOST: '127.0.0.1' }
  delete (env as Record<string, string | undefined>).JWT_SECRET_KEY
  const ports = [await freePort(), await freePort()]
  const procs = ports.map((port) => startNode(t, [SERVER], { env: { ...env, PORT: String(port) } }))
  await Promise.all(procs.map((p, i) => waitReady(p, ports[i] as number)))
  const [a, b] = ports.map((port) => `http://127.0.0.1:${port}`) as [string, string]

  const jwks = await Promise.all([a, b].map(async (base) => (await fetch(`${base}/.well-known/jwks.json`)).json()))
  t.same(jwks[0], jwks[1], 'both publish the same key set')
  t.equal((jwks[0] as { keys: Array<{ kid: string }> }).keys[0]?.kid, key.kid)

  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  t.teardown(() => client.end())
  const clientKey = await testKey('EdDSA')
  const stored = await parseClientJwks(JSON.stringify({ keys: [clientKey.jwk] }))
  const { rows } = await client.query<{ id: string }>('INSERT INTO clients (name, scopes, auth_method) VALUES ($1, $2, \'private_key_jwt\') RETURNING id', ['replicated', ['notes:read']])
  const clientId = rows[0]?.id as string
  await client.query('INSERT INTO client_keys (client_id, kid, jwk) VALUES ($1, $2, $3)', [clientId, stored[0]?.kid, stored[0]])

  const assertion = await signed(clientKey, assertionClaims(clientId, issuer), { kid: clientKey.kid })
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: assertion }).toString()
  const first = await fetch(`${a}/auth/token`, { method: 'POST', headers: FORM, body })
  t.equal(first.status, 200, 'the assertion works on a')
  const replay = await fetch(`${b}/auth/token`, { method: 'POST', headers: FORM, body })
  t.equal(replay.status, 401, 'and is refused on b')
  t.same(await replay.json(), { error: 'invalid_client', error_description: 'Client authentication failed' })

  const { access_token: token } = await first.json() as { access_token: string }
  t.equal((await fetch(`${b}/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'a token of a verifies on b')
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${b}/.well-known/jwks.json`)), { issuer, algorithms: ['ES256'], typ: 'at+jwt' })
  t.equal(payload.client_id, clientId, 'and with jose, from the key set alone')

  const revokeAssertion = await signed(clientKey, assertionClaims(clientId, `${issuer}/auth/token`), { kid: clientKey.kid })
  const revoked = await fetch(`${b}/auth/revoke`, { method: 'POST', headers: FORM, body: new URLSearchParams({ token, client_assertion_type: JWT_BEARER, client_assertion: revokeAssertion }).toString() })
  t.equal(revoked.status, 200, 'revoked on b')
  const start = Date.now()
  let status = 200
  while (status === 200 && Date.now() - start < 3000) {
    status = (await fetch(`${a}/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status
    if (status === 200) await sleep(10)
  }
  t.equal(status, 401, 'refused on a')
  t.ok(Date.now() - start < 1000, `within ${Date.now() - start} ms`)

  for (const proc of procs) proc.child.kill('SIGTERM')
  await Promise.all(procs.map((p) => p.exited))
})
