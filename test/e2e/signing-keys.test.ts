import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { GENEROUS_LIMITS, testDatabaseUrl, productionEnv } from '../helper.js'
import { ROOT } from '../fixtures/deploy/dockerfile.js'
import { freePort, runNode, startNode, waitReady } from '../fixtures/deploy/process.js'
import { testKey } from '../fixtures/keys.js'

// The real entry point (node dist/server.js) with asymmetric signing: in development
// without a key, one is generated once into .data/ and kept across restarts; in
// production, a missing or mismatched key refuses the start. Compile dist/ first.

const SERVER = join(ROOT, 'dist', 'server.js')

async function kidsOf (port: number): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)
  return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
}

t.test('development without JWT_PRIVATE_KEY: a key pair generated once into .data/, with a warning, kept across restarts', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'svc-devkey-'))
  const env = { ENVIRONMENT: 'development', JWT_ALGORITHM: 'ES256', DATABASE_URL: await testDatabaseUrl(), HOST: '127.0.0.1', ...GENEROUS_LIMITS }
  const file = join(cwd, '.data', 'jwt-signing-key-es256.pem')

  const port = await freePort()
  const first = startNode(t, [SERVER], { cwd, env: { ...env, PORT: String(port) } })
  await waitReady(first, port)
  const warning = first.lines.find((l) => /JWT_PRIVATE_KEY is not set/.test(String(l.msg)))
  t.match(warning, { level: 40, file, msg: /generated now/ })
  t.equal(statSync(file).mode & 0o777, 0o600, 'readable by its owner only')
  t.match(readFileSync(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/, 'a PKCS#8 PEM key')
  const kids = await kidsOf(port)
  t.equal(kids.length, 1)
  t.equal(kids[0], warning?.kid)

  // A token issued before the restart must still verify after it.
  const reg = await fetch(`http://127.0.0.1:${port}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: `dev-${port}@example.test`, password: 'correct horse battery staple' }) })
  t.equal(reg.status, 201)
  const login = await fetch(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: `dev-${port}@example.test`, password: 'correct horse battery staple' }) })
  const { access_token: token } = await login.json() as { access_token: string }
  first.child.kill('SIGTERM')
  await first.exited

  const port2 = await freePort()
  const second = startNode(t, [SERVER], { cwd, env: { ...env, PORT: String(port2) } })
  await waitReady(second, port2)
  t.match(second.lines.find((l) => /JWT_PRIVATE_KEY is not set/.test(String(l.msg))), { msg: /generated earlier/ })
  t.same(await kidsOf(port2), kids, 'the same key after a restart')
  const me = await fetch(`http://127.0.0.1:${port2}/auth/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(me.status, 200, 'a token from before the restart still verifies')
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`http://127.0.0.1:${port2}/.well-known/jwks.json`)))
  t.type(payload.sub, 'string')
  second.child.kill('SIGTERM')
  await second.exited
})

t.test('production refuses to start without the key, or with a key of another algorithm, naming the variable only', async (t) => {
  const base = await productionEnv()
  delete (base as Record<string, string | undefined>).JWT_SECRET_KEY
  const ed = await testKey('EdDSA')
  for (const [extra, message] of [
    [{ JWT_ALGORITHM: 'ES256' }, /JWT_PRIVATE_KEY is required in production/],
    [{ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ed.pem }, /JWT_PRIVATE_KEY does not match JWT_ALGORITHM=ES256/]
  ] as const) {
    const run = await runNode(t, [SERVER], { env: { ...base, ...extra, PORT: String(await freePort()) } })
    t.equal(run.code, 78)
    t.match(run.stderr, message)
    t.notOk(run.stderr.includes('PRIVATE KEY-----'), 'the key itself is never printed')
  }
})
