// Benchmarks of service-to-service identity, for bench/run.mjs (its `--routes` names
// me-es256, me-eddsa and token-pkjwt):
//
// - GET /auth/me with an ES256 and with an EdDSA token, each on a service started
//   with that algorithm, measured in alternating rounds against the HS256 service of
//   the same run (its "baseline" row): the ratio is asymmetric / HS256, target 0.9.
// - POST /auth/token with private_key_jwt (an ES256 client assertion, a fresh jti per
//   request), on the ES256 service alone: tokens per second, target 1,000.
import { spawnSync } from 'node:child_process'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, calculateJwkThumbprint } from 'jose'

export const IDENTITY_ROUTES = ['me-es256', 'me-eddsa', 'token-pkjwt']
const ISSUER = 'https://bench.example.test'
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
// More assertions than the service can take in the time given: each is used once.
const MAX_TOKENS_PER_SECOND = 4000

function privateKeyPem (alg) {
  const { privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')
  return privateKey.export({ format: 'pem', type: 'pkcs8' })
}

/**
 * Starts the asymmetric services the selected routes need (same database as the
 * HS256 service) and returns the routes, each with the servers it compares.
 * `ctx`: { root, selected, env, dbUrl, email, password, seconds, hs256: { port, pid, accessToken }, startServer, waitReady, freePort, log }.
 */
export async function identityRoutes (ctx) {
  const wanted = IDENTITY_ROUTES.filter((id) => ctx.selected.has(id))
  if (wanted.length === 0) return []
  const routes = []
  const hs256 = { name: 'baseline', port: ctx.hs256.port, pid: ctx.hs256.pid }
  const services = {}
  for (const alg of ['ES256', 'EdDSA']) {
    if (!(alg === 'ES256' ? wanted.some((id) => id !== 'me-eddsa') : wanted.includes('me-eddsa'))) continue
    const port = await ctx.freePort()
    const child = ctx.startServer(`service-${alg}`, [join(ctx.root, 'dist', 'server.js')], {
      ...ctx.env, PORT: String(port), JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: privateKeyPem(alg), JWT_ISSUER: ISSUER
    })
    await ctx.waitReady(port, '/health/ready', child)
    services[alg] = { name: 'service', port, pid: child.pid, accessToken: await login(port, ctx) }
  }

  for (const [id, alg] of [['me-es256', 'ES256'], ['me-eddsa', 'EdDSA']]) {
    if (!wanted.includes(id)) continue
    const ours = services[alg]
    routes.push({
      id,
      name: `GET /auth/me, ${alg} (baseline: HS256 service)`,
      target: 0.90,
      method: 'GET',
      path: '/auth/me',
      // Each server gets a token it issued itself.
      headersByPort: { [hs256.port]: bearer(ctx.hs256.accessToken), [ours.port]: bearer(ours.accessToken) },
      servers: [hs256, ours]
    })
  }

  if (wanted.includes('token-pkjwt')) {
    const service = services.ES256
    const client = registerClient(ctx, service)
    let bodies = []
    let next = 0
    routes.push({
      id: 'token-pkjwt',
      name: 'POST /auth/token, private_key_jwt (ES256 assertion)',
      target: 1000,
      absolute: true,
      connections: 10,
      method: 'POST',
      path: '/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      // Signed just before the measurement (an assertion lives 5 minutes at most).
      async prepare () {
        const count = Math.ceil(MAX_TOKENS_PER_SECOND * ctx.seconds)
        ctx.log(`token-pkjwt: signing ${count} client assertions`)
        bodies = await assertions(client, count)
      },
      // A fresh assertion (new jti) per request: a replay would be refused.
      requests: [{
        method: 'POST',
        path: '/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        setupRequest (request) { return { ...request, body: bodies[next++ % bodies.length] } }
      }],
      servers: [service]
    })
  }
  return routes
}

export function bearer (token) {
  return { authorization: `Bearer ${token}` }
}

/** An access token for the bench's user on the server at this port. */
export async function login (port, ctx) {
  const res = await fetch(`http://127.0.0.1:${port}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ctx.email, password: ctx.password })
  })
  if (res.status !== 200) throw new Error(`login on port ${port}: ${res.status} ${await res.text()}`)
  return (await res.json()).access_token
}

/** A private_key_jwt client, registered the way an operator does: `npm run clients -- create --jwks-file`. */
function registerClient (ctx, service) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const dir = mkdtempSync(join(tmpdir(), 'bench-jwks-'))
  const file = join(dir, 'client.jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [publicKey.export({ format: 'jwk' })] }))
  const run = spawnSync(process.execPath, [join(ctx.root, 'dist', 'scripts', 'clients.js'), 'create', '--name', `bench-${randomUUID().slice(0, 8)}`, '--scopes', 'notes:read', '--jwks-file', file], {
    cwd: dir, env: { PATH: process.env.PATH, ...ctx.env, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: privateKeyPem('ES256'), JWT_ISSUER: ISSUER }, encoding: 'utf8'
  })
  if (run.status !== 0) throw new Error(`clients create --jwks-file: ${run.stderr}`)
  const { client_id: id, kids } = JSON.parse(run.stdout)
  return { id, kid: kids[0], privateKey, port: service.port }
}

async function assertions (client, count) {
  const kid = client.kid ?? await calculateJwkThumbprint(client.privateKey.export({ format: 'jwk' }))
  const now = Math.floor(Date.now() / 1000)
  const bodies = []
  for (let i = 0; i < count; i++) {
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(client.id).setSubject(client.id).setAudience(ISSUER)
      // Valid for the whole run (at most 5 minutes ahead, as the service demands).
      .setIssuedAt(now).setExpirationTime(now + 290)
      .sign(client.privateKey)
    bodies.push(new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion }).toString())
  }
  return bodies
}
