import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { cli } from '../fixtures/clients-cli.js'
import { build, productionEnv, testDatabaseUrl } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY } from '../fixtures/jwt.js'
import { assertionClaims, signed, testKey } from '../fixtures/keys.js'

// `npm run clients -- create` for clients without a secret (docs/auth.md, "Service
// clients"): --jwks-file (private_key_jwt) and --federated-issuer/--federated-subject
// (workload identity), run as `node dist/scripts/clients.js` with the service's variables.

const ISSUER = 'https://notes.example.test'
const K8S = 'https://kubernetes.default.svc.cluster.local'
const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY, JWT_ISSUER: ISSUER }

t.test('clients without a secret', async (t) => {
  const databaseUrl = await testDatabaseUrl()
  const env = { ENVIRONMENT: 'test', DATABASE_URL: databaseUrl, ...ENV }
  const app = await build(t, { env: ENV })
  const dir = mkdtempSync(join(tmpdir(), 'svc-jwks-'))
  const file = (name: string, content: unknown) => {
    const path = join(dir, name)
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
    return path
  }

  t.test('create --jwks-file registers a private_key_jwt client whose assertions then get tokens', async (t) => {
    const ec = await testKey('ES256')
    const ed = await testKey('EdDSA')
    const rsa = await testKey('RS256')
    const run = await cli(['create', '--name', 'billing-keys', '--scopes', 'notes:read', '--jwks-file', file('ok.json', { keys: [ec.jwk, { ...ed.jwk, kid: undefined }, { ...rsa.jwk, alg: 'PS256' }] })], env)
    t.equal(run.code, 0, run.stderr)
    const created = run.lines[0] as { client_id: string, auth_method: string, kids: string[] }
    t.same(Object.keys(created).sort(), ['auth_method', 'client_id', 'kids', 'name', 'scopes'], 'no secret is printed: there is none')
    t.equal(created.auth_method, 'private_key_jwt')
    t.same(created.kids, [ec.kid, ed.kid, rsa.kid], 'a key without kid gets its RFC 7638 thumbprint')
    const { rows } = await app.pg.query('SELECT secret_hash FROM clients WHERE id = $1', [created.client_id])
    t.equal(rows[0].secret_hash, null, 'no secret exists')

    for (const key of [ec, ed, { ...rsa, alg: 'PS256' as const }]) {
      const res = await app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          grant_type: 'client_credentials',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await signed(key, assertionClaims(created.client_id, ISSUER), { kid: key.kid })
        }).toString()
      })
      t.equal(res.statusCode, 200, `${key.alg}: ${res.body}`)
    }
  })

  t.test('create --jwks-file refuses a private key, a file that cannot be read, and a service without JWT_ISSUER', async (t) => {
    const ec = await testKey('ES256')
    const privateKey = await cli(['create', '--name', 'leaky', '--scopes', 'notes:read', '--jwks-file', file('private.json', { keys: [ec.privateKey.export({ format: 'jwk' })] })], env)
    t.equal(privateKey.code, 1)
    t.match(privateKey.stderr, /private member "d": register public keys only/)
    t.equal(privateKey.stdout, '')
    const missing = await cli(['create', '--name', 'nofile', '--scopes', 'notes:read', '--jwks-file', join(dir, 'nope.json')], env)
    t.match(missing.stderr, /cannot read --jwks-file/)
    const noIssuer = await cli(['create', '--name', 'noiss', '--scopes', 'notes:read', '--jwks-file', file('fine.json', { keys: [ec.jwk] })], { ...env, JWT_ISSUER: '' })
    t.equal(noIssuer.code, 1)
    t.match(noIssuer.stderr, /needs JWT_ISSUER/)
    const { rows } = await app.pg.query('SELECT count(*)::int AS n FROM clients WHERE name = ANY($1)', [['leaky', 'nofile', 'noiss']])
    t.equal(rows[0].n, 0, 'nothing was registered')
  })

  t.test('create --federated-issuer/--federated-subject registers a workload, within FEDERATION_ALLOWED_ISSUERS', async (t) => {
    const run = await cli(['create', '--name', 'billing-api', '--scopes', 'notes:read', '--federated-issuer', K8S, '--federated-subject', 'system:serviceaccount:billing:api'], env)
    t.equal(run.code, 0, run.stderr)
    t.same(run.lines[0], { client_id: run.lines[0]?.client_id, name: 'billing-api', scopes: ['notes:read'], auth_method: 'federated', federated_issuer: K8S, federated_subject: 'system:serviceaccount:billing:api' })
    const again = await cli(['create', '--name', 'billing-api-2', '--scopes', 'notes:read', '--federated-issuer', K8S, '--federated-subject', 'system:serviceaccount:billing:api'], env)
    t.equal(again.code, 1)
    t.match(again.stderr, /federated issuer and subject already exists/)

    const gke = 'https://container.googleapis.com/v1/projects/p/locations/l/clusters/c'
    const withUri = await cli(['create', '--name', 'gke-api', '--scopes', 'notes:read', '--federated-issuer', gke, '--federated-subject', 'system:serviceaccount:a:b', '--jwks-uri', 'https://keys.example.test/jwks'], { ...env, FEDERATION_ALLOWED_ISSUERS: gke })
    t.equal(withUri.code, 0, withUri.stderr)
    t.equal(withUri.lines[0]?.jwks_uri, 'https://keys.example.test/jwks')

    const outside = await cli(['create', '--name', 'elsewhere', '--scopes', 'notes:read', '--federated-issuer', 'https://evil.example.test', '--federated-subject', 'x'], { ...env, FEDERATION_ALLOWED_ISSUERS: K8S })
    t.equal(outside.code, 1)
    t.match(outside.stderr, /FEDERATION_ALLOWED_ISSUERS does not name https:\/\/evil.example.test/)

    const production = { ...await productionEnv({ DATABASE_URL: databaseUrl }), JWT_ISSUER: ISSUER }
    const unlisted = await cli(['create', '--name', 'prod-workload', '--scopes', 'notes:read', '--federated-issuer', K8S, '--federated-subject', 'system:serviceaccount:a:b'], production)
    t.equal(unlisted.code, 1)
    t.match(unlisted.stderr, /in production it must/)
    const { rows } = await app.pg.query('SELECT count(*)::int AS n FROM clients WHERE name = ANY($1)', [['elsewhere', 'prod-workload']])
    t.equal(rows[0].n, 0, 'nothing was registered')
  })

  t.test('list shows each client\'s authentication method', async (t) => {
    await app.repos.clients.create('with-secret', ['notes:read'])
    const lines = (await cli(['list'], env)).lines
    t.equal(lines.find((l) => l.name === 'with-secret')?.auth_method, 'client_secret')
    t.equal(lines.find((l) => l.name === 'billing-keys')?.auth_method, 'private_key_jwt')
    t.match(lines.find((l) => l.name === 'billing-api'), { auth_method: 'federated', federated_issuer: K8S, federated_subject: 'system:serviceaccount:billing:api' })
    t.match(lines.find((l) => l.name === 'gke-api'), { jwks_uri: 'https://keys.example.test/jwks' })
  })

  t.test('bad usage exits 2 before touching the database', async (t) => {
    const usage: Array<[string[], RegExp]> = [
      [['--federated-issuer', K8S], /both --federated-issuer and --federated-subject/],
      [['--federated-subject', 'x'], /both/],
      [['--federated-issuer', 'kubernetes', '--federated-subject', 'x'], /issuer URL/],
      [['--federated-issuer', `${K8S}?x=1`, '--federated-subject', 'x'], /issuer URL/],
      [['--federated-issuer', K8S, '--federated-subject', 'x', '--jwks-uri', 'file:///etc/passwd'], /--jwks-uri/],
      [['--federated-issuer', K8S, '--federated-subject', 'x', '--jwks-file', 'x.json'], /choose one/]
    ]
    for (const [args, message] of usage) {
      const bad = await cli(['create', '--name', 'usage', '--scopes', 'notes:read', ...args], env)
      t.equal(bad.code, 2, args.join(' '))
      t.match(bad.stderr, message)
    }
    t.match((await cli(['list', '--jwks-file', 'x'], env)).stderr, /no arguments/)
  })
})
