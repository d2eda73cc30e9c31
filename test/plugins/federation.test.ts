import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { jwtVerify } from 'jose'
import { federatedKeys } from '../../plugins/app/auth/federation.js'
import { testKey } from '../fixtures/keys.js'
import { startIssuer } from '../fixtures/oidc-issuer.js'

// The issuers' key sets alone (plugins/app/auth/federation.ts), with intervals short
// enough to watch them pass: the app uses 30 s between fetches and 10 minutes of cache.

const JWKS = '/openid/v1/jwks'
const options = { algorithms: ['RS256'] }

t.test('an issuer\'s new key is picked up on its first unknown kid once the interval has passed, with one fetch', async (t) => {
  const issuer = await startIssuer(t)
  const keys = federatedKeys({ allowed: () => true, httpsOnly: false, minFetchIntervalMs: 1000 })
  const keySet = keys.keySet(issuer.url, null)
  // Made beforehand: an RSA key takes a while to generate, and the interval is short.
  const next = await testKey('RS256')
  const first = await issuer.token({})
  await jwtVerify(first, keySet, options)
  t.equal(issuer.count(JWKS), 1)

  await issuer.rotate(false, next)
  await t.rejects(jwtVerify(await issuer.token({}), keySet, options), 'within the interval the new kid is unknown')
  t.equal(issuer.count(JWKS), 1, 'and nothing was fetched for it')

  await sleep(1100)
  const tokens = await Promise.all(Array.from({ length: 5 }, () => issuer.token({})))
  await Promise.all(tokens.map((token) => jwtVerify(token, keySet, options)))
  t.equal(issuer.count(JWKS), 2, 'five concurrent tokens with the new kid: one fetch')
})

t.test('the keys last published still verify while the issuer is down', async (t) => {
  const issuer = await startIssuer(t)
  const keys = federatedKeys({ allowed: () => true, httpsOnly: false, minFetchIntervalMs: 50, cacheMaxAgeMs: 100 })
  const keySet = keys.keySet(issuer.url, null)
  await jwtVerify(await issuer.token({}), keySet, options)
  issuer.jwksBehaviour = 'error'
  await sleep(150)
  await jwtVerify(await issuer.token({}), keySet, options)
  t.equal(issuer.count(JWKS), 2, 'it tried to refresh, failed, and used what it had')
})

t.test('an issuer that is not allowed, or plain HTTP where https is required, is never contacted', async (t) => {
  const issuer = await startIssuer(t)
  const token = await issuer.token({})
  await t.rejects(jwtVerify(token, federatedKeys({ allowed: () => false, httpsOnly: false }).keySet(issuer.url, null), options), /FEDERATION_ALLOWED_ISSUERS/)
  await t.rejects(jwtVerify(token, federatedKeys({ allowed: () => true, httpsOnly: true }).keySet(issuer.url, null), options), /plain HTTP/)
  t.same(issuer.requests, [])
})

t.test('a failed discovery is retried, at most once per interval', async (t) => {
  const issuer = await startIssuer(t)
  issuer.discoveryIssuer = 'https://somebody-else.example.test'
  const keys = federatedKeys({ allowed: () => true, httpsOnly: false, minFetchIntervalMs: 200 })
  const keySet = keys.keySet(issuer.url, null)
  const token = await issuer.token({})
  await t.rejects(jwtVerify(token, keySet, options), /another issuer/)
  await t.rejects(jwtVerify(token, keySet, options), /less than/)
  t.equal(issuer.count('/.well-known/openid-configuration'), 1)
  issuer.discoveryIssuer = undefined
  await sleep(250)
  await jwtVerify(token, keySet, options)
  t.equal(issuer.count('/.well-known/openid-configuration'), 2)
})
