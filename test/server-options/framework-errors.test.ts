import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, GENEROUS_LIMITS, productionEnv } from '../helper.js'
import { rawRequest, type RawResponse } from '../fixtures/raw-http.js'
import { securityHeaders } from '../fixtures/security-headers.js'

// Every response carries the security headers, including the answers the router and
// the HTTP parser give before any hook (docs/edge.md, "Answers given before any hook").

async function listen (t: Test, env: Record<string, string>): Promise<{ app: FastifyInstance, port: number }> {
  const app = await build(t, { env: await productionEnv(env) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: (app.server.address() as { port: number }).port }
}

const get = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`

t.test('the router\'s and the parser\'s own answers carry exactly the headers of a normal response', async (t) => {
  const { port } = await listen(t, {})
  const normal = securityHeaders((await rawRequest(port, get('/health/live'))).headers)
  // Guard against comparing nothing with nothing.
  for (const name of ['content-security-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options', 'referrer-policy', 'cross-origin-resource-policy', 'cache-control']) {
    t.ok(normal[name], `a normal response carries ${name}`)
  }

  const answers: Array<[string, string | Buffer, number]> = [
    ['bad percent-encoding', get('/notes/%zz'), 400],
    ['a path parameter over 200 characters', get(`/notes/${'a'.repeat(300)}`), 404],
    ['an unknown URL (routed)', get('/no/such/thing'), 404],
    ['headers over 16 KiB', get('/health/live', `X-Big: ${'a'.repeat(20_000)}\r\n`), 431],
    ['a control character in a header', get('/health/live', 'X-Odd: a\u0001b\r\n'), 400],
    ['a bare CR in a header', get('/health/live', 'X-Odd: a\rb\r\n'), 400],
    ['not HTTP at all', 'HELLO\r\n\r\n', 400]
  ]
  for (const [label, request, status] of answers) {
    const res: RawResponse = await rawRequest(port, request)
    t.equal(res.status, status, `${label}: ${status}`)
    t.same(securityHeaders(res.headers), normal, `${label}: the same security headers as a normal response`)
    t.match(res.headers['x-request-id'], /\S/, `${label}: a request id`)
    t.equal(JSON.parse(res.body).requestId, res.headers['x-request-id'], `${label}: the error shape`)
  }
})

t.test('a bad-URL 400 counts against the client\'s rate limit like any other request', async (t) => {
  const { port } = await listen(t, { ...GENEROUS_LIMITS, RATE_LIMIT_MAX: '3' })
  const remaining: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await rawRequest(port, get('/notes/%zz'))
    t.equal(res.status, 400)
    remaining.push(res.headers['x-ratelimit-remaining'] ?? '')
  }
  t.same(remaining, ['2', '1', '0'], 'each spends from the budget, with the usual headers')
  const refused = await rawRequest(port, get('/notes/%zz'))
  t.equal(refused.status, 429, 'once the budget is spent, a bad URL is refused like any request')
  t.equal(JSON.parse(refused.body).code, 'RATE_LIMITED')
  t.match(refused.headers['retry-after'], /^\d+$/)
  t.match(refused.headers['strict-transport-security'], /max-age/)
  t.equal((await rawRequest(port, get('/health/live'))).status, 200, 'the probes are still not limited')
  t.equal((await rawRequest(port, get('/no/such/thing'))).status, 429, 'and the budget is the one routed requests share')
})

t.test('after the budget is spent on routed requests, bad URLs are refused too (the finding)', async (t) => {
  const { app, port } = await listen(t, { ...GENEROUS_LIMITS, RATE_LIMIT_MAX: '2' })
  for (let i = 0; i < 2; i++) await rawRequest(port, get('/no/such/thing'))
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await rawRequest(port, get('/notes/%zz'))).status)
  t.same(statuses, Array(10).fill(429))
  t.equal(app.rateLimitStats.rejections, 10, 'and counted as rejections (rate_limit_rejections_total)')
})
