import t from 'tap'
import { build, injectAs, loginAs } from '../helper.js'

t.test('GET /health/live answers ok without touching dependencies', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('GET /health/ready reports the database', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok', checks: { database: 'ok' } })
})

t.test('refuses unknown query parameters with 400 VALIDATION_ERROR instead of ignoring them', async (t) => {
  const app = await build(t, { env: {} })
  for (const url of ['/health/live?debug=1', '/health/ready?verbose=true']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, 'VALIDATION_ERROR', url)
  }
  const user = await loginAs(app)
  const created = await injectAs(app, user.accessToken, { method: 'POST', url: '/notes', payload: { title: 'q' } })
  const id = created.json().id
  for (const [method, url] of [['GET', `/notes/${id}?x=1`], ['PATCH', `/notes/${id}?x=1`], ['DELETE', `/notes/${id}?x=1`], ['POST', '/notes?x=1']] as const) {
    const res = await injectAs(app, user.accessToken, { method, url, payload: method === 'GET' || method === 'DELETE' ? undefined : { title: 'r' } })
    t.equal(res.statusCode, 400, `${method} ${url}`)
    t.equal(res.json().code, 'VALIDATION_ERROR', `${method} ${url}`)
  }
  const still = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${id}` })
  t.equal(still.json().title, 'q', 'nothing changed')
})
