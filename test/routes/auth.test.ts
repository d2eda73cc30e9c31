import t from 'tap'
import { build, loginAs, injectAs, clientToken } from '../helper.js'

t.test('registers, logs in and reads /auth/me', async (t) => {
  const app = await build(t)
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: ' Alice@Example.TEST ', password: 'a very long password' } })
  t.equal(reg.statusCode, 201, reg.body)
  t.equal(reg.json().email, 'alice@example.test')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'alice@example.test', password: 'a very long password' } })
  t.equal(login.statusCode, 200, login.body)
  const me = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${login.json().access_token}` } })
  t.equal(me.statusCode, 200, me.body)
  t.same(me.json().scopes, ['notes:read', 'notes:write'])
  const u = await loginAs(app)
  const me2 = await injectAs(app, u.accessToken, { method: 'GET', url: '/auth/me' })
  t.equal(me2.json().id, u.userId)
  const ct = await clientToken(app, { scopes: ['notes:read'] })
  const me3 = await injectAs(app, ct, { method: 'GET', url: '/auth/me' })
  t.equal(me3.statusCode, 200, me3.body)
  t.same(me3.json().scopes, ['notes:read'])
})
