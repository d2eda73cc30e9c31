import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { normalizeIP } from '@fastify/rate-limit'
import { clientKey } from '../../plugins/external/rate-limit.js'
import { loadConfig } from '../../config/load.js'
import { build } from '../helper.js'

/** The app as production builds it, plus test routes registered before ready. */
function buildWith (t: Test, env: Record<string, string>, routes: FastifyPluginAsync): Promise<FastifyInstance> {
  return build(t, { env, routes: async (app) => { await app.register(routes) } })
}

// Routes standing in for the real ones: /ip echoes the client address the limiter sees;
// /login has the stricter per-route limit that the auth routes declare.
const testRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.get('/ip', async (request) => ({ ip: request.ip }))
  fastify.post('/login', {
    config: { rateLimit: { max: fastify.config.RATE_LIMIT_AUTH_MAX, timeWindow: 60000 } }
  }, async () => ({ ok: true }))
}

t.test('counts requests per client and sends the rate-limit headers', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '1 minute' }, testRoutes)
  for (const remaining of [2, 1, 0]) {
    const res = await app.inject({ method: 'GET', url: '/ip' })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-ratelimit-limit'], '3')
    t.equal(res.headers['x-ratelimit-remaining'], String(remaining))
    const reset = Number(res.headers['x-ratelimit-reset'])
    t.ok(reset > 0 && reset <= 60, `x-ratelimit-reset is the seconds until the window ends (${reset})`)
    t.equal(res.headers['retry-after'], undefined)
  }
})

t.test('answers 429 RATE_LIMITED in the error shape with retry-after once the limit is spent', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '60000' }, testRoutes)
  t.equal(app.rateLimitStats.rejections, 0)
  await app.inject({ method: 'GET', url: '/ip' })
  await app.inject({ method: 'GET', url: '/ip' })
  const res = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-request-id': 'limited-1' } })
  t.equal(res.statusCode, 429)
  t.same(res.json(), {
    statusCode: 429,
    error: 'Too Many Requests',
    code: 'RATE_LIMITED',
    message: res.json().message,
    requestId: 'limited-1'
  })
  t.match(res.json().message, /^Rate limit exceeded, retry in /)
  t.equal(res.headers['x-request-id'], 'limited-1')
  t.equal(res.headers['x-ratelimit-limit'], '2')
  t.equal(res.headers['x-ratelimit-remaining'], '0')
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter}`)
  t.equal(res.headers['x-ratelimit-reset'], res.headers['retry-after'])
  t.match(res.headers['content-type'], /^application\/json/)
  await app.inject({ method: 'GET', url: '/ip' })
  t.equal(app.rateLimitStats.rejections, 2, 'every 429 is counted for the metrics')
})

t.test('lets a 429 to a listed origin be read by the browser', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '1', CORS_ORIGINS: 'https://app.example.com' }, testRoutes)
  const origin = 'https://app.example.com'
  await app.inject({ method: 'GET', url: '/ip', headers: { origin } })
  const res = await app.inject({ method: 'GET', url: '/ip', headers: { origin } })
  t.equal(res.statusCode, 429)
  t.equal(res.headers['access-control-allow-origin'], origin)
  t.ok(String(res.headers['access-control-expose-headers']).split(', ').includes('retry-after'))
})

t.test('a preflight of a listed origin is answered before the limiter and is not counted', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '2', CORS_ORIGINS: 'https://app.example.com' }, testRoutes)
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'OPTIONS', url: '/ip', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' } })
    t.equal(res.statusCode, 204)
  }
  const res = await app.inject({ method: 'GET', url: '/ip' })
  t.equal(res.headers['x-ratelimit-remaining'], '1')
})

t.test('never limits the health probes', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_MAX: '1' } })
  for (let i = 0; i < 5; i++) {
    for (const url of ['/health/live', '/health/ready']) {
      const res = await app.inject({ method: 'GET', url })
      t.equal(res.statusCode, 200, url)
      t.equal(res.headers['x-ratelimit-limit'], undefined, `${url} carries no rate-limit header`)
    }
  }
})

t.test('counts unknown URLs, so probing for routes is limited too', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '5' }, testRoutes)
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) {
    const res = await app.inject({ method: 'GET', url: `/${randomUUID()}/admin.php` })
    statuses.push(res.statusCode)
    if (res.statusCode === 404) {
      t.equal(res.headers['x-ratelimit-limit'], '5')
      t.equal(res.json().code, 'NOT_FOUND')
    } else {
      t.equal(res.json().code, 'RATE_LIMITED')
      t.ok(res.headers['retry-after'])
    }
  }
  t.same(statuses, [404, 404, 404, 404, 404, 429, 429, 429])
  const known = await app.inject({ method: 'GET', url: '/ip' })
  t.equal(known.statusCode, 429, 'unknown URLs and routes share one budget per client')
  const wrongMethod = await app.inject({ method: 'DELETE', url: '/ip' })
  t.equal(wrongMethod.statusCode, 429)
})

t.test('counts a preflight from an unlisted origin like any unknown request', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '2', CORS_ORIGINS: 'https://app.example.com' }, testRoutes)
  const preflight = { method: 'OPTIONS' as const, url: '/ip', headers: { origin: 'https://evil.test', 'access-control-request-method': 'GET' } }
  t.equal((await app.inject(preflight)).statusCode, 404)
  t.equal((await app.inject(preflight)).statusCode, 404)
  const res = await app.inject(preflight)
  t.equal(res.statusCode, 429)
  t.equal(res.headers['access-control-allow-origin'], undefined)
})

t.test('applies a route\'s stricter config.rateLimit (the auth routes\' RATE_LIMIT_AUTH_MAX)', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '100', RATE_LIMIT_AUTH_MAX: '3' }, testRoutes)
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'POST', url: '/login', payload: {} })
    statuses.push(res.statusCode)
    t.equal(res.headers['x-ratelimit-limit'], '3')
    if (res.statusCode === 429) t.equal(res.json().code, 'RATE_LIMITED')
  }
  t.same(statuses, [200, 200, 200, 429, 429])
  t.equal(app.rateLimitStats.rejections, 2, 'route limits count as rejections too')
  const other = await app.inject({ method: 'GET', url: '/ip' })
  t.equal(other.statusCode, 200, 'the global budget is separate')
  t.equal(other.headers['x-ratelimit-limit'], '100')
})

t.test('limits the real auth routes when they exist', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_AUTH_MAX: '2', RATE_LIMIT_MAX: '100' } })
  const routes = ['/auth/login', '/auth/register', '/auth/token'].filter((url) => app.hasRoute({ method: 'POST', url }))
  if (routes.length === 0) {
    t.test('POST /auth/login, /auth/register, /auth/token', { skip: 'no auth routes are registered yet' }, async () => {})
    return
  }
  for (const url of routes) {
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'POST', url, payload: {}, remoteAddress: `198.51.100.${routes.indexOf(url) + 1}` })
      statuses.push(res.statusCode)
      t.equal(res.headers['x-ratelimit-limit'], '2', url)
    }
    t.equal(statuses[2], 429, `${url}: the third attempt in a minute is refused`)
  }
})

t.test('counts requests that fail authentication, so token probing is limited too', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_MAX: '3' } })
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) {
    const res = await app.inject({
      method: 'GET',
      url: i % 2 === 0 ? '/notes' : '/auth/me',
      headers: { authorization: `Bearer not.a.token${i}` },
      remoteAddress: '198.51.100.77'
    })
    statuses.push(res.statusCode)
    t.ok(res.headers['x-ratelimit-limit'], `attempt ${i + 1} carries the rate-limit headers`)
  }
  t.same(statuses, [401, 401, 401, 429], 'the fourth guess within the window is refused before authentication')
})

t.test('keeps each route\'s own limit apart from the global one and from other routes', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_AUTH_MAX: '1', RATE_LIMIT_MAX: '100' } })
  const remoteAddress = '198.51.100.78'
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: {}, remoteAddress })
  t.equal(login.headers['x-ratelimit-limit'], '1')
  const register = await app.inject({ method: 'POST', url: '/auth/register', payload: {}, remoteAddress })
  t.not(register.statusCode, 429, 'registering is counted apart from logging in')
  const live = await app.inject({ method: 'GET', url: '/notes', remoteAddress })
  t.equal(live.headers['x-ratelimit-limit'], '100', 'other routes keep the global limit')
  t.equal(live.headers['x-ratelimit-remaining'], '99', 'and their own count')
})

t.test('opens a new window once the old one ends', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW: '400' }, testRoutes)
  t.equal((await app.inject({ method: 'GET', url: '/ip' })).statusCode, 200)
  const limited = await app.inject({ method: 'GET', url: '/ip' })
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['retry-after'], '1', 'rounded up to whole seconds')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal((await app.inject({ method: 'GET', url: '/ip' })).statusCode, 200)
})

t.test('with TRUST_PROXY=false a client cannot pick its key with X-Forwarded-For', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '3', TRUST_PROXY: 'false' }, testRoutes)
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': `203.0.113.${i + 1}` } })
    statuses.push(res.statusCode)
    if (res.statusCode === 200) t.equal(res.json().ip, '127.0.0.1')
  }
  t.same(statuses, [200, 200, 200, 429, 429])
})

t.test('with TRUST_PROXY naming the proxy, its X-Forwarded-For gives each client its own key', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '2', TRUST_PROXY: '127.0.0.1' }, testRoutes)
  for (const client of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
    for (let i = 0; i < 2; i++) {
      const res = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': client } })
      t.equal(res.statusCode, 200)
      t.equal(res.json().ip, client)
    }
    const res = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': client } })
    t.equal(res.statusCode, 429, `${client} has its own budget, and spends it`)
  }
  // A client that reaches the service directly is not the proxy: its header is ignored.
  const direct = { remoteAddress: '198.51.100.7' }
  for (let i = 0; i < 2; i++) {
    const res = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': `192.0.2.${i}` }, ...direct })
    t.equal(res.json().ip, '198.51.100.7')
  }
  const res = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': '192.0.2.99' }, ...direct })
  t.equal(res.statusCode, 429)
})

t.test('with TRUST_PROXY as a CIDR, any proxy inside it is trusted', async (t) => {
  const app = await buildWith(t, { TRUST_PROXY: '10.0.0.0/8,fd00::/8' }, testRoutes)
  const viaProxy = await app.inject({ method: 'GET', url: '/ip', remoteAddress: '10.42.0.7', headers: { 'x-forwarded-for': '203.0.113.9' } })
  t.equal(viaProxy.json().ip, '203.0.113.9')
  // A client prepending a fake hop only adds an entry the proxy then forwards after it.
  const spoofed = await app.inject({ method: 'GET', url: '/ip', remoteAddress: '10.42.0.7', headers: { 'x-forwarded-for': '1.2.3.4, 203.0.113.9' } })
  t.equal(spoofed.json().ip, '203.0.113.9')
  const v6 = await app.inject({ method: 'GET', url: '/ip', remoteAddress: 'fd00::1', headers: { 'x-forwarded-for': '203.0.113.10' } })
  t.equal(v6.json().ip, '203.0.113.10')
  const outside = await app.inject({ method: 'GET', url: '/ip', remoteAddress: '192.0.2.1', headers: { 'x-forwarded-for': '203.0.113.9' } })
  t.equal(outside.json().ip, '192.0.2.1')
})

t.test('with TRUST_PROXY as a hop count, only the hops the proxies added are believed', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '2', TRUST_PROXY: '1' }, testRoutes)
  // One proxy appends the address it saw; whatever the client wrote before it is ignored.
  for (const spoof of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) {
    const res = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': `${spoof}, 203.0.113.5` } })
    if (spoof !== '3.3.3.3') t.equal(res.json().ip, '203.0.113.5')
    else t.equal(res.statusCode, 429, 'prepended addresses do not give a new key')
  }
  const other = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': '203.0.113.6' } })
  t.equal(other.json().ip, '203.0.113.6', 'a different client behind the proxy has its own key')
  const twoHops = await buildWith(t, { TRUST_PROXY: '2' }, testRoutes)
  const res = await twoHops.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': '9.9.9.9, 203.0.113.5, 10.0.0.2' } })
  t.equal(res.json().ip, '203.0.113.5')
})

t.test('the client key of an address is what normalizeIP makes of it, IPv4 by its fast path too', async (t) => {
  for (const ip of ['192.0.2.1', '10.0.0.255', '127.0.0.1', '::1', '::ffff:192.0.2.1', '2001:DB8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:fffe', 'fe80::1']) {
    t.equal(clientKey({ ip } as FastifyRequest), normalizeIP(ip), ip)
  }
  t.equal(clientKey({ ip: '' } as FastifyRequest), 'unknown', 'a client that hung up')
})

t.test('groups IPv6 clients by /64, so rotating addresses inside one does not help', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '2' }, testRoutes)
  const sameNetwork = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:fffe', '2001:db8:1:2:abcd::9']
  const statuses = []
  for (const remoteAddress of sameNetwork) {
    statuses.push((await app.inject({ method: 'GET', url: '/ip', remoteAddress })).statusCode)
  }
  t.same(statuses, [200, 200, 429])
  const otherNetwork = await app.inject({ method: 'GET', url: '/ip', remoteAddress: '2001:db8:1:3::1' })
  t.equal(otherNetwork.statusCode, 200, 'the next /64 is another client')
  const mapped = await app.inject({ method: 'GET', url: '/ip', remoteAddress: '::ffff:192.0.2.1' })
  const plain = await app.inject({ method: 'GET', url: '/ip', remoteAddress: '192.0.2.1' })
  t.equal(mapped.headers['x-ratelimit-remaining'], '1')
  t.equal(plain.headers['x-ratelimit-remaining'], '0', 'an IPv4-mapped address is the same client as the IPv4 one')
})

t.test('refuses a zero RATE_LIMIT_WINDOW and TRUST_PROXY=true at start, and keeps a hop count of 1 a count', async (t) => {
  t.throws(() => loadConfig({ ENVIRONMENT: 'test', RATE_LIMIT_WINDOW: '0' }), /RATE_LIMIT_WINDOW must be at least 1 millisecond/)
  t.throws(() => loadConfig({ ENVIRONMENT: 'test', TRUST_PROXY: 'true' }), /TRUST_PROXY must be false, a hop count/)
  t.equal(loadConfig({ ENVIRONMENT: 'test', RATE_LIMIT_WINDOW: '2 seconds' }).config.RATE_LIMIT_WINDOW, '2 seconds')
  // ajv once coerced the hop count 1 into `true`: trust every X-Forwarded-For.
  t.equal(loadConfig({ ENVIRONMENT: 'test', TRUST_PROXY: '1' }).config.TRUST_PROXY, 1)
  t.equal(loadConfig({ ENVIRONMENT: 'test', TRUST_PROXY: '0' }).config.TRUST_PROXY, false)
})

t.test('sends RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers) beside x-ratelimit-*, 429s included', async (t) => {
  const app = await buildWith(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '30 seconds', RATE_LIMIT_AUTH_MAX: '3' }, testRoutes)
  const first = await app.inject({ method: 'GET', url: '/ip' })
  t.equal(first.headers['ratelimit-policy'], '"default";q=2;w=30', 'a named policy with its quota and window in seconds')
  t.match(first.headers.ratelimit, /^"default";r=1;t=(30|29)$/, 'remaining and seconds to reset, as x-ratelimit-*')
  t.equal(first.headers.ratelimit, `"default";r=${first.headers['x-ratelimit-remaining']};t=${first.headers['x-ratelimit-reset']}`)
  await app.inject({ method: 'GET', url: '/ip' })
  const limited = await app.inject({ method: 'GET', url: '/ip' })
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['ratelimit-policy'], '"default";q=2;w=30')
  t.equal(limited.headers.ratelimit, `"default";r=0;t=${limited.headers['retry-after']}`, 'reset equals Retry-After')

  const login = await app.inject({ method: 'POST', url: '/login', payload: {} })
  t.equal(login.headers['ratelimit-policy'], '"POST /login";q=3;w=60', 'a route with its own limit names its own policy')
  t.match(login.headers.ratelimit, /^"POST \/login";r=2;t=\d+$/)
  const probe = await app.inject({ method: 'GET', url: '/nowhere', remoteAddress: '198.51.100.90' })
  t.equal(probe.headers['ratelimit-policy'], '"default";q=2;w=30', 'unknown URLs spend the default budget')
  const health = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(health.headers['ratelimit-policy'], undefined, 'unlimited routes carry neither field')
  t.equal(health.headers.ratelimit, undefined)
})

t.test('every refusal is a ratelimit.exceeded security event, a burst included', async (t) => {
  const logs: Array<Record<string, unknown>> = []
  const app = await build(t, { env: { RATE_LIMIT_MAX: '1' }, logs, routes: async (app) => { await app.register(testRoutes) } })
  for (let i = 0; i < 30; i++) await app.inject({ method: 'GET', url: '/ip', remoteAddress: '198.51.100.91', headers: { 'x-request-id': `burst-${i}` } })
  const events = logs.filter((l) => l.event === 'ratelimit.exceeded')
  t.equal(events.length, 29, 'one line per 429, none dropped')
  t.match(events[0], { level: 40, event: 'ratelimit.exceeded', remoteAddress: '198.51.100.91', policy: 'default', reqId: 'burst-1', msg: 'ratelimit.exceeded' })
  t.same(events.map((e) => e.reqId), Array.from({ length: 29 }, (_, i) => `burst-${i + 1}`))
})
