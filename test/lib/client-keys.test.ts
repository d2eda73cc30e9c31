import t from 'tap'
import { InvalidJwks, parseClientJwks } from '../../lib/client-keys.js'
import { testKey } from '../fixtures/keys.js'

// The JWK sets that `clients create --jwks-file` accepts (lib/client-keys.ts): public
// RSA ≥ 2048, P-256 and Ed25519 signing keys only, stored with their public members only.

t.test('keeps only the public members, and gives a key without kid its RFC 7638 thumbprint', async (t) => {
  const ec = await testKey('ES256')
  const ed = await testKey('EdDSA')
  const rsa = await testKey('RS256')
  const stored = await parseClientJwks(JSON.stringify({ keys: [{ ...ec.jwk, x5c: ['MIIfake'], ext: true }, { ...ed.jwk, kid: undefined }, { ...rsa.jwk, alg: 'PS256', use: 'sig' }] }))
  t.same(stored, [
    { kty: 'EC', crv: 'P-256', x: ec.jwk.x, y: ec.jwk.y, kid: ec.kid, use: 'sig' },
    { kty: 'OKP', crv: 'Ed25519', x: ed.jwk.x, kid: ed.kid, use: 'sig' },
    { kty: 'RSA', n: rsa.jwk.n, e: rsa.jwk.e, kid: rsa.kid, alg: 'PS256', use: 'sig' }
  ])
})

t.test('refuses private members, weak, foreign or broken keys, and anything that is not a JWK set', async (t) => {
  const ec = await testKey('ES256')
  const cases: Array<[string, unknown, RegExp]> = [
    ['a private EC key', { keys: [ec.privateKey.export({ format: 'jwk' })] }, /private member "d"/],
    ['a private RSA key', { keys: [(await testKey('RS256')).privateKey.export({ format: 'jwk' })] }, /private member "d"/],
    ['a symmetric key', { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, /private member "k"/],
    ['RSA 1024', { keys: [(await testKey('RS256', { modulusLength: 1024 })).jwk] }, /at least 2048 bits/],
    ['P-384', { keys: [(await testKey('ES256', { curve: 'P-384' })).jwk] }, /P-256/],
    ['X25519', { keys: [{ kty: 'OKP', crv: 'X25519', x: ec.jwk.x }] }, /Ed25519/],
    ['an HMAC alg', { keys: [{ ...ec.jwk, alg: 'HS256' }] }, /alg must be one of ES256/],
    ['alg none', { keys: [{ ...ec.jwk, alg: 'none' }] }, /alg must be one of ES256/],
    ['an encryption key', { keys: [{ ...ec.jwk, use: 'enc' }] }, /use must be "sig"/],
    ['one kid twice', { keys: [ec.jwk, ec.jwk] }, /used twice/],
    ['a point off the curve', { keys: [{ ...ec.jwk, x: 'AAAA' }] }, /not a valid EC public key/],
    ['an empty set', { keys: [] }, /JWK set/],
    ['a lone JWK', ec.jwk, /JWK set/],
    ['21 keys', { keys: Array.from({ length: 21 }, () => ec.jwk) }, /JWK set/],
    ['a kid of 201 characters', { keys: [{ ...ec.jwk, kid: 'k'.repeat(201) }] }, /kid must be/],
    ['a string', 'x', /JWK set/],
    ['null', null, /JWK set/]
  ]
  for (const [what, content, message] of cases) {
    const err = await parseClientJwks(JSON.stringify(content)).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof InvalidJwks, `${what}: refused`)
    t.match((err as Error | undefined)?.message, message, what)
  }
  await t.rejects(parseClientJwks('{not json'), /not JSON/)
})
