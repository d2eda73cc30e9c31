import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../config/load.js'
import { problemsOf } from '../fixtures/config-problems.js'

// The configuration of asymmetric signing, federation and the issuer URL
// (docs/contract.md, "Configuration", "Refusals"), checked on loadConfig directly.

const pem = (pair: { privateKey: { export: (o: { format: 'pem', type: 'pkcs8' }) => string | Buffer } }) => pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
const P256 = pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }))
const P384 = pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }))
const ED25519 = pem(generateKeyPairSync('ed25519'))
const RSA = pem(generateKeyPairSync('rsa', { modulusLength: 2048 }))
const ENCRYPTED = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' }).toString()

const PRODUCTION = {
  ENVIRONMENT: 'production',
  SECRET_KEY: 'a'.repeat(40),
  DATABASE_URL: 'postgresql://app:a-strong-database-password@db.internal:5432/app'
}

t.test('production with ES256 or EdDSA needs JWT_PRIVATE_KEY, and not JWT_SECRET_KEY', async (t) => {
  t.same(problemsOf(t, { ...PRODUCTION, JWT_ALGORITHM: 'ES256' }), ['JWT_PRIVATE_KEY is required in production and is missing or empty'])
  const { config } = loadConfig({ ...PRODUCTION, JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ED25519 })
  t.equal(config.JWT_ALGORITHM, 'EdDSA')
  t.equal(loadConfig({ ...PRODUCTION, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: P256, JWT_SECRET_KEY: 'short' }).config.JWT_PRIVATE_KEY, P256, 'a leftover JWT_SECRET_KEY is not used, so not judged')
  t.match(problemsOf(t, { ...PRODUCTION }), ['JWT_SECRET_KEY is required in production and is missing or empty'], 'HMAC still needs its secret')
})

t.test('refuses a key that does not match the algorithm, in every environment', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['ES256', ED25519, /JWT_PRIVATE_KEY does not match JWT_ALGORITHM=ES256/],
    ['ES256', P384, /does not match/],
    ['ES256', RSA, /does not match/],
    ['EdDSA', P256, /JWT_PRIVATE_KEY does not match JWT_ALGORITHM=EdDSA/],
    ['ES256', 'not a key', /PKCS#8 PEM/],
    ['ES256', ENCRYPTED, /unencrypted/],
    ['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString(), /PKCS#8 PEM private key/]
  ]
  for (const [alg, key, message] of cases) {
    t.match(problemsOf(t, { ...PRODUCTION, JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: key }), [message], `production: ${alg}`)
    t.match(problemsOf(t, { ENVIRONMENT: 'development', JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: key }), [message], `development: ${alg}`)
  }
})

t.test('reads the key from JWT_PRIVATE_KEY_FILE, and forgives \\n escapes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-keys-'))
  writeFileSync(join(dir, 'key.pem'), P256)
  t.equal(loadConfig({ ...PRODUCTION, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: join(dir, 'key.pem') }).config.JWT_PRIVATE_KEY?.trim(), P256.trim())
  t.ok(loadConfig({ ...PRODUCTION, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: P256.replace(/\n/g, '\\n') }))
})

t.test('JWT_PRIVATE_KEY_PREVIOUS must be a P-256 or Ed25519 key, other than the current one', async (t) => {
  t.ok(loadConfig({ ...PRODUCTION, JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ED25519, JWT_PRIVATE_KEY_PREVIOUS: P256 }), 'the other algorithm is a rotation too')
  t.match(problemsOf(t, { ...PRODUCTION, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: P256, JWT_PRIVATE_KEY_PREVIOUS: RSA }), [/JWT_PRIVATE_KEY_PREVIOUS must be/])
  t.match(problemsOf(t, { ...PRODUCTION, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: P256, JWT_PRIVATE_KEY_PREVIOUS: P256 }), [/must differ/])
})

t.test('a private key with an HMAC algorithm is a mistake, refused', async (t) => {
  t.match(problemsOf(t, { ENVIRONMENT: 'development', JWT_PRIVATE_KEY: P256 }), [/JWT_PRIVATE_KEY is only used with JWT_ALGORITHM=ES256 or EdDSA/])
})

t.test('production refuses a JWT_ISSUER that is not an absolute http(s) URL without query or fragment', async (t) => {
  const good = { ...PRODUCTION, JWT_SECRET_KEY: 'b'.repeat(40) }
  for (const issuer of ['notes-service', '/relative', 'ftp://auth.example.test', 'https://auth.example.test/?x=1', 'https://auth.example.test/#top', 'https://user:pw@auth.example.test']) {
    t.same(problemsOf(t, { ...good, JWT_ISSUER: issuer }), ['JWT_ISSUER must be an absolute http(s) URL without query or fragment'], issuer)
  }
  for (const issuer of ['https://auth.example.test', 'https://auth.example.test/svc', 'http://notes.billing.svc.cluster.local:3000']) {
    t.equal(loadConfig({ ...good, JWT_ISSUER: issuer }).config.JWT_ISSUER, issuer)
  }
  const dev = loadConfig({ ENVIRONMENT: 'development', JWT_ISSUER: 'notes-service' })
  t.ok(dev.warnings.some((w) => /JWT_ISSUER is not an absolute http\(s\) URL/.test(w)), 'development warns instead')
})

t.test('FEDERATION_ALLOWED_ISSUERS is a comma list of issuer URLs, https only in production', async (t) => {
  t.same(loadConfig({ ENVIRONMENT: 'test', FEDERATION_ALLOWED_ISSUERS: 'https://kubernetes.default.svc.cluster.local, http://127.0.0.1:8080' }).config.FEDERATION_ALLOWED_ISSUERS,
    ['https://kubernetes.default.svc.cluster.local', 'http://127.0.0.1:8080'])
  t.match(problemsOf(t, { ENVIRONMENT: 'test', FEDERATION_ALLOWED_ISSUERS: 'kubernetes' }), [/FEDERATION_ALLOWED_ISSUERS must be a comma list of issuer URLs/])
  t.match(problemsOf(t, { ...PRODUCTION, JWT_SECRET_KEY: 'b'.repeat(40), FEDERATION_ALLOWED_ISSUERS: 'http://issuer.internal' }), [/https:\/\/ issuers only/])
})
