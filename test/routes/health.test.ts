import t from 'tap'
import { build } from '../helper.js'

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
