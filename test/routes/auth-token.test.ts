import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { ClientCredentials } from 'simple-oauth2'
import { build, clientToken, createServiceClient, injectAs } from '../helper.js'
import { TEST_JWT_SECRET, TEST_SECRET_KEY, decode } from '../fixtures/jwt.js'

// POST /auth/token: the OAuth 2.0 client credentials grant (RFC 6749 §4.4), with
// §5.2 error bodies, tried with a stock client library and by hand.

const ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, SECRET_KEY: TEST_SECRET_KEY }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString()

function tokenRequest (app: FastifyInstance, payload: string | object, headers: Record<string, string> = FORM): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/token', payload, headers })
}

function oauthError (t: Test, res: LightMyRequestResponse, statusCode: number, error: string): void {
  t.equal(res.statusCode, statusCode, res.body)
  t.equal(res.json().error, error)
  t.same(Object.keys(res.json()).filter((k) => k !== 'error_description'), ['error'], 'an RFC 6749 §5.2 body')
  t.equal(res.headers['cache-control'], 'no-store')
}

function commonError (t: Test, res: LightMyRequestResponse, statusCode: number, code: string): void {
  t.equal(res.statusCode, statusCode, res.body)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'requestId', 'statusCode'])
  t.equal(res.json().code, code)
}

t.test('POST /auth/token', async (t) => {
  const app = await build(t, { env: ENV })
  const client = await createServiceClient(app, { name: 'billing', scopes: ['notes:read', 'notes:write'] })

  t.test('grants a token to HTTP Basic credentials with a form body', async (t) => {
    const res = await tokenRequest(app, form({ grant_type: 'client_credentials' }), { ...FORM, authorization: basic(client.clientId, client.clientSecret) })
    t.equal(res.statusCode, 200, res.body)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'scope', 'token_type'])
    t.equal(body.token_type, 'Bearer')
    t.equal(body.expires_in, 3600)
    t.equal(body.scope, 'notes:read notes:write')
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers.pragma, 'no-cache')
    t.match(decode(body.access_token).payload, { sub: client.clientId, client_id: client.clientId, type: 'access', scope: 'notes:read notes:write' })
    t.notOk(decode(body.access_token).payload.sid, 'no session')
    const me = await injectAs(app, body.access_token, { method: 'GET', url: '/auth/me' })
    t.same(me.json(), { client_id: client.clientId, name: 'billing', scopes: ['notes:read', 'notes:write'] })
  })

  t.test('grants a token to credentials in a JSON or form body', async (t) => {
    const fields = { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret }
    t.equal((await tokenRequest(app, fields, { 'content-type': 'application/json' })).statusCode, 200)
    t.equal((await tokenRequest(app, form(fields))).statusCode, 200)
  })

  t.test('form-url-decodes HTTP Basic credentials (RFC 6749 §2.3.1)', async (t) => {
    const encodedId = client.clientId.replace(/-/g, '%2D')
    const res = await tokenRequest(app, form({ grant_type: 'client_credentials' }), { ...FORM, authorization: basic(encodedId, client.clientSecret) })
    t.equal(res.statusCode, 200, res.body)
  })

  t.test('narrows the grant to a requested subset of scopes', async (t) => {
    const res = await tokenRequest(app, form({ grant_type: 'client_credentials', scope: 'notes:read' }), { ...FORM, authorization: basic(client.clientId, client.clientSecret) })
    t.equal(res.json().scope, 'notes:read')
    const me = await injectAs(app, res.json().access_token, { method: 'GET', url: '/auth/me' })
    t.same(me.json().scopes, ['notes:read'])
    const empty = await tokenRequest(app, form({ grant_type: 'client_credentials', scope: '' }), { ...FORM, authorization: basic(client.clientId, client.clientSecret) })
    t.equal(empty.json().scope, 'notes:read notes:write', 'an empty scope is an omitted scope')
  })

  t.test('refuses a scope the client does not hold with invalid_scope', async (t) => {
    for (const scope of ['admin', 'notes:read admin', 'NOTES:READ', 'notes:read\u00a0notes:write']) {
      oauthError(t, await tokenRequest(app, form({ grant_type: 'client_credentials', scope }), { ...FORM, authorization: basic(client.clientId, client.clientSecret) }), 400, 'invalid_scope')
    }
  })

  t.test('refuses a wrong secret with invalid_client and a Basic challenge only when Basic was tried', async (t) => {
    const viaBasic = await tokenRequest(app, form({ grant_type: 'client_credentials' }), { ...FORM, authorization: basic(client.clientId, 'wrong-secret') })
    oauthError(t, viaBasic, 401, 'invalid_client')
    t.match(viaBasic.headers['www-authenticate'], /^Basic /)
    const viaBody = await tokenRequest(app, form({ grant_type: 'client_credentials', client_id: client.clientId, client_secret: 'wrong-secret' }))
    oauthError(t, viaBody, 401, 'invalid_client')
    t.equal(viaBody.headers['www-authenticate'], undefined)
  })

  t.test('refuses unknown, malformed and missing client credentials with invalid_client', async (t) => {
    const grant = form({ grant_type: 'client_credentials' })
    for (const authorization of [basic('00000000-0000-4000-8000-000000000000', 'x'), basic('not-a-uuid', 'x'), basic("' OR 1=1 --", 'x'), 'Basic', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, basic('%zz', 'x')]) {
      const res = await tokenRequest(app, grant, { ...FORM, authorization })
      oauthError(t, res, 401, 'invalid_client')
      t.match(res.headers['www-authenticate'], /^Basic /)
    }
    oauthError(t, await tokenRequest(app, grant), 401, 'invalid_client')
    oauthError(t, await tokenRequest(app, form({ grant_type: 'client_credentials', client_id: client.clientId })), 401, 'invalid_client')
  })

  t.test('refuses a disabled client, and its tokens stop working', async (t) => {
    const victim = await createServiceClient(app, { scopes: ['notes:read'] })
    const token = await clientToken(app, { clientId: victim.clientId })
    t.equal((await injectAs(app, token, { method: 'GET', url: '/auth/me' })).statusCode, 200)
    await app.repos.clients.disable(victim.clientId)
    const start = Date.now()
    let status = 200
    while (status === 200 && Date.now() - start < 2000) {
      status = (await injectAs(app, token, { method: 'GET', url: '/auth/me' })).statusCode
      if (status === 200) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const res = await injectAs(app, token, { method: 'GET', url: '/auth/me' })
    t.equal(res.json().code, 'AUTH_TOKEN_REVOKED')
    t.ok(Date.now() - start < 1000, `refused within ${Date.now() - start} ms`)
    oauthError(t, await tokenRequest(app, form({ grant_type: 'client_credentials' }), { ...FORM, authorization: basic(victim.clientId, victim.clientSecret) }), 401, 'invalid_client')
  })

  t.test('refuses a missing or unsupported grant_type', async (t) => {
    const auth = { ...FORM, authorization: basic(client.clientId, client.clientSecret) }
    oauthError(t, await tokenRequest(app, form({}), auth), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, form({ grant_type: '' }), auth), 400, 'invalid_request')
    for (const grant of ['password', 'authorization_code', 'refresh_token', 'CLIENT_CREDENTIALS']) {
      oauthError(t, await tokenRequest(app, form({ grant_type: grant }), auth), 400, 'unsupported_grant_type')
    }
  })

  t.test('refuses two authentication methods at once, duplicated, unknown or mistyped parameters', async (t) => {
    const auth = { ...FORM, authorization: basic(client.clientId, client.clientSecret) }
    oauthError(t, await tokenRequest(app, form({ grant_type: 'client_credentials', client_secret: client.clientSecret }), auth), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, form({ grant_type: 'client_credentials', client_id: '00000000-0000-4000-8000-000000000000' }), auth), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, 'grant_type=client_credentials&grant_type=client_credentials', auth), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, 'grant_type=client_credentials&scope=a&scope=b', auth), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, form({ grant_type: 'client_credentials', username: 'admin' }), auth), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, { grant_type: 'client_credentials', scope: ['notes:read'] }, { ...auth, 'content-type': 'application/json' }), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, { grant_type: 1 }, { ...auth, 'content-type': 'application/json' }), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, '{"grant_type":', { ...auth, 'content-type': 'application/json' }), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, '{"grant_type":"client_credentials","__proto__":{"x":1}}', { ...auth, 'content-type': 'application/json' }), 400, 'invalid_request')
    oauthError(t, await tokenRequest(app, '[]', { ...auth, 'content-type': 'application/json' }), 400, 'invalid_request')
    oauthError(t, await app.inject({ method: 'POST', url: '/auth/token', headers: { authorization: auth.authorization } }), 400, 'invalid_request')
    oauthError(t, await app.inject({ method: 'POST', url: '/auth/token?grant_type=client_credentials', payload: form({ grant_type: 'client_credentials' }), headers: auth }), 400, 'invalid_request')
  })

  t.test('keeps the common error shape for 415 and 413', async (t) => {
    commonError(t, await tokenRequest(app, 'grant_type=client_credentials', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    commonError(t, await tokenRequest(app, 'x', { 'content-type': 'multipart/form-data; boundary=x' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    commonError(t, await tokenRequest(app, form({ grant_type: 'client_credentials', scope: 'a'.repeat(2_000_000) })), 413, 'PAYLOAD_TOO_LARGE')
  })

  t.test('a service token is not a refresh token', async (t) => {
    const token = await clientToken(app, { clientId: client.clientId })
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${token}` } })
    commonError(t, res, 401, 'AUTH_INVALID_TOKEN')
  })
})

t.test('POST /auth/token keeps the common shape for 429', async (t) => {
  const app = await build(t, { env: { ...ENV, RATE_LIMIT_AUTH_MAX: '1' } })
  await tokenRequest(app, form({ grant_type: 'client_credentials' }))
  commonError(t, await tokenRequest(app, form({ grant_type: 'client_credentials' })), 429, 'RATE_LIMITED')
})

/** What simple-oauth2 (a Boom error) reports of a refused token request. */
async function failureOf (promise: Promise<unknown>): Promise<{ status?: number, error?: unknown }> {
  try {
    await promise
    return {}
  } catch (err) {
    const data = (err as { data?: { res?: { statusCode?: number }, payload?: { error?: unknown } } }).data
    return { status: data?.res?.statusCode, error: data?.payload?.error }
  }
}

t.test('a stock OAuth 2.0 client (simple-oauth2) obtains and uses a token', async (t) => {
  const app = await build(t, { env: ENV })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const client = await createServiceClient(app, { name: 'stock-client', scopes: ['notes:read', 'notes:write'] })

  for (const authorizationMethod of ['header', 'body'] as const) {
    for (const bodyFormat of ['form', 'json'] as const) {
      const oauth = new ClientCredentials({
        client: { id: client.clientId, secret: client.clientSecret },
        auth: { tokenHost: `http://127.0.0.1:${port}`, tokenPath: '/auth/token' },
        options: { authorizationMethod, bodyFormat }
      })
      const token = await oauth.getToken({ scope: 'notes:read' })
      t.equal(token.token.token_type, 'Bearer', `${authorizationMethod}/${bodyFormat}`)
      t.equal(token.token.scope, 'notes:read')
      t.notOk(token.expired(), 'not expired')
      const me = await fetch(`http://127.0.0.1:${port}/auth/me`, { headers: { authorization: `Bearer ${token.token.access_token as string}` } })
      t.equal(me.status, 200)
      t.equal(((await me.json()) as { client_id: string }).client_id, client.clientId)
    }
  }

  const wrong = new ClientCredentials({
    client: { id: client.clientId, secret: 'not-the-secret' },
    auth: { tokenHost: `http://127.0.0.1:${port}`, tokenPath: '/auth/token' }
  })
  t.same(await failureOf(wrong.getToken({})), { status: 401, error: 'invalid_client' })
  const tooMuch = new ClientCredentials({
    client: { id: client.clientId, secret: client.clientSecret },
    auth: { tokenHost: `http://127.0.0.1:${port}`, tokenPath: '/auth/token' }
  })
  t.same(await failureOf(tooMuch.getToken({ scope: ['notes:read', 'admin'] })), { status: 400, error: 'invalid_scope' })
})
