import t from 'tap'
import { canonicalJson, isKeptStatus, parseIdempotencyKey, requestFingerprint } from '../../lib/idempotency.js'

t.test('an Idempotency-Key is 1 to 255 visible ASCII characters, bare or as a quoted Structured Field String', async (t) => {
  for (const [raw, key] of [
    ['abc', 'abc'],
    ['"abc"', 'abc'],
    ['8e03978e-40d5-43e8-bc93-6894a57f9324', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['"a\\"b"', 'a"b'],
    ['"a\\\\b"', 'a\\b'],
    ['x'.repeat(255), 'x'.repeat(255)],
    [`"${'x'.repeat(255)}"`, 'x'.repeat(255)],
    ['!#$%&\'*+-.^_`|~', '!#$%&\'*+-.^_`|~'],
    ['a"b', 'a"b']
  ] as const) {
    t.equal(parseIdempotencyKey(raw), key, raw)
  }
})

t.test('anything else is not a key', async (t) => {
  for (const raw of [
    '', '""', ' ', 'a b', ' abc', 'abc ', '"a b"', 'x'.repeat(256), `"${'x'.repeat(256)}"`,
    '"abc', '"', '"a"b"', '"a\\b"', '"a\\"', 'é', '"é"', 'a\tb', 'a\u0000b', 'a\u007fb',
    // Two Idempotency-Key headers arrive joined by Node.
    'abc, def'
  ]) {
    t.equal(parseIdempotencyKey(raw), undefined, JSON.stringify(raw))
  }
  t.equal(parseIdempotencyKey(['abc', 'def']), undefined, 'an array of values')
  t.equal(parseIdempotencyKey(undefined), undefined)
})

t.test('the fingerprint compares bodies as parsed JSON: key order and whitespace do not matter, values do', async (t) => {
  const a = JSON.parse('{"title":"x","body":"y","tags":[{"b":1,"a":2}]}')
  const b = JSON.parse('{ "tags" : [ { "a" : 2 , "b" : 1 } ],\n "body":"y", "title":"x" }')
  t.equal(canonicalJson(a), canonicalJson(b))
  t.equal(canonicalJson(a), '{"body":"y","tags":[{"a":2,"b":1}],"title":"x"}')
  t.equal(requestFingerprint('POST', '/notes', a), requestFingerprint('POST', '/notes', b))
  t.not(requestFingerprint('POST', '/notes', a), requestFingerprint('POST', '/notes', { ...a, title: 'X' }), 'another value')
  t.not(requestFingerprint('POST', '/notes', { tags: [1, 2] }), requestFingerprint('POST', '/notes', { tags: [2, 1] }), 'array order matters')
  t.not(requestFingerprint('POST', '/notes', { n: 1 }), requestFingerprint('POST', '/notes', { n: '1' }), 'types matter')
  t.not(requestFingerprint('POST', '/notes', a), requestFingerprint('POST', '/other', a), 'another route is another request')
  t.not(requestFingerprint('POST', '/notes', a), requestFingerprint('PATCH', '/notes', a), 'another method too')
  t.not(requestFingerprint('POST', '/notes', undefined), requestFingerprint('POST', '/notes', {}), 'no body is not an empty object')
  t.equal(canonicalJson({ a: undefined, b: null }), '{"b":null}', 'undefined members are absent, as in JSON')
  t.equal(canonicalJson('é\u2028'), JSON.stringify('é\u2028'))
})

t.test('responses kept for a retry: all but 5xx, 401, 403, 409 and 429', async (t) => {
  for (const status of [200, 201, 204, 301, 400, 404, 410, 412, 422]) t.ok(isKeptStatus(status), String(status))
  for (const status of [401, 403, 409, 429, 500, 502, 503, 504]) t.notOk(isKeptStatus(status), String(status))
})
