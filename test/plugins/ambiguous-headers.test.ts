import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, loginAs } from '../helper.js'
import { rawExchange } from '../fixtures/raw-http.js'

// Ambiguous requests are refused, not guessed (docs/edge.md, "Ambiguous requests").

const INVALID_REQUEST = 'Bearer realm="api", error="invalid_request"'

async function listen (t: Test, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, port: number, token: string }> {
  const app = await build(t, { env })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { accessToken } = await loginAs(app)
  return { app, port: (app.server.address() as { port: number }).port, token: accessToken }
}

const me = (headers: string) => `GET /auth/me HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`

t.test('two Authorization headers: 400 BAD_REQUEST with invalid_request, whichever holds the good token', async (t) => {
  const { port, token } = await listen(t)
  for (const [label, headers] of [
    ['the good token first', `Authorization: Bearer ${token}\r\nAuthorization: Bearer junk\r\n`],
    ['the good token last', `Authorization: Bearer junk\r\nAuthorization: Bearer ${token}\r\n`],
    ['the same token twice', `Authorization: Bearer ${token}\r\nauthorization: Bearer ${token}\r\n`],
    ['one of them empty', `Authorization: \r\nAuthorization: Bearer ${token}\r\n`]
  ]) {
    const res = await rawExchange(port, me(headers as string))
    t.equal(res.status, 400, label as string)
    t.equal(JSON.parse(res.body).code, 'BAD_REQUEST')
    t.equal(res.headers['www-authenticate'], INVALID_REQUEST, 'RFC 6750 §3.1')
  }
  const one = await rawExchange(port, me(`Authorization: Bearer ${token}\r\n`))
  t.equal(one.status, 200, 'one header still works')
})

t.test('two JWT_HEADER_NAME headers (which Node joins with ", ") are refused the same way', async (t) => {
  const { app, port, token } = await listen(t, { JWT_HEADER_NAME: 'X-Api-Token', JWT_HEADER_TYPE: '' })
  const res = await rawExchange(port, me(`X-Api-Token: ${token}\r\nX-Api-Token: ${token}\r\n`))
  t.equal(res.status, 400)
  t.equal(res.headers['www-authenticate'], INVALID_REQUEST)
  t.equal((await rawExchange(port, me(`X-Api-Token: ${token}\r\n`))).status, 200)
  // Through inject too, where a repeated header is an array.
  const injected = await app.inject({ url: '/auth/me', headers: { 'x-api-token': [token, token] } })
  t.equal(injected.statusCode, 400)
})

t.test('a token header placed after a thousand others is read, and more than the server reads is a 431', async (t) => {
  const { port, token } = await listen(t)
  let many = ''
  for (let i = 0; i < 1500; i++) many += `x-h${i}: 1\r\n`
  const late = await rawExchange(port, me(`${many}Authorization: Bearer ${token}\r\n`))
  t.equal(late.status, 200, 'the 1,501st header field is not dropped (no AUTH_MISSING_TOKEN)')

  let tooMany = ''
  for (let i = 0; i < 5000; i++) tooMany += `x${i}:\r\n`
  const refused = await rawExchange(port, me(`${tooMany}Authorization: Bearer ${token}\r\n`))
  t.equal(refused.status, 431, 'a header block over 16 KiB is refused whole, never shortened')
})
