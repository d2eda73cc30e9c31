import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, injectAs, loginAs } from '../helper.js'

// POST /notes with Idempotency-Key (docs/contract.md, "Safe retries"): a retried
// create creates nothing, on any replica, after a restart, in a retry storm.

async function notesOf (app: FastifyInstance, userId: string): Promise<number> {
  const { rows } = await app.pg.query<{ n: number }>('SELECT count(*)::int AS n FROM notes WHERE owner_id = $1', [userId])
  return rows[0]?.n ?? 0
}

function create (app: FastifyInstance, token: string, key: string, payload: object = { title: 'Once', body: 'only' }) {
  return injectAs(app, token, { method: 'POST', url: '/notes', payload, headers: { 'idempotency-key': key } })
}

t.test('a retried POST /notes answers the same 201 and creates one note', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const first = await create(app, user.accessToken, 'create-1')
  t.equal(first.statusCode, 201)
  const retry = await create(app, user.accessToken, 'create-1', { body: 'only', title: 'Once' })
  t.equal(retry.statusCode, 201)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.same(retry.json(), first.json())
  t.equal(retry.headers.location, first.headers.location)
  t.equal(retry.headers.etag, first.headers.etag)
  t.equal(await notesOf(app, user.userId), 1)

  const other = await create(app, user.accessToken, 'create-1', { title: 'Another' })
  t.equal(other.statusCode, 422)
  t.equal(other.json().code, 'IDEMPOTENCY_KEY_REUSED')
  t.equal((await create(app, user.accessToken, 'create-2', { title: 'Another' })).statusCode, 201, 'a new key is a new note')
  t.equal(await notesOf(app, user.userId), 2)
})

t.test('an invalid body claims no key: the 400 is not kept, and the key is free for the corrected request', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const bad = await create(app, user.accessToken, 'fix-me', { title: '' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'VALIDATION_ERROR')
  const { rows } = await app.pg.query('SELECT 1 FROM idempotency_keys WHERE principal = $1', [`user:${user.userId}`])
  t.equal(rows.length, 0, 'nothing stored for a request that failed validation')
  t.equal((await create(app, user.accessToken, 'fix-me', { title: 'Fixed' })).statusCode, 201)
})

t.test('the kept answer survives a restart: a new process replays it', async (t) => {
  const before = await build(t)
  const user = await loginAs(before)
  const first = await create(before, user.accessToken, 'across-restart')
  t.equal(first.statusCode, 201)
  await before.close()

  const after = await build(t)
  const retry = await create(after, user.accessToken, 'across-restart')
  t.equal(retry.statusCode, 201)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.equal(retry.body, first.body)
  t.equal(await notesOf(after, user.userId), 1)
})

t.test('a retry storm: 20 concurrent POSTs with one key on two replicas create exactly one note', async (t) => {
  // Two apps on one database: two replicas, each with its own pool.
  const [a, b] = [await build(t), await build(t)]
  const user = await loginAs(a)
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => create(i % 2 === 0 ? a : b, user.accessToken, 'storm', { title: 'Storm' })))
  const statuses = results.map((r) => r.statusCode)
  const originals = results.filter((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined)
  const replays = results.filter((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === 'true')
  const inUse = results.filter((r) => r.statusCode === 409)
  t.comment(`storm: ${originals.length} original, ${replays.length} replayed, ${inUse.length} in use (409)`)
  t.equal(originals.length, 1, `exactly one request was processed (${statuses.join(' ')})`)
  t.equal(originals.length + replays.length + inUse.length, 20, 'every other answer is the replay or 409')
  for (const res of inUse) {
    t.equal(res.json().code, 'IDEMPOTENCY_KEY_IN_USE')
    t.equal(res.headers['retry-after'], '1')
  }
  for (const res of replays) t.equal(res.body, originals[0]?.body)
  t.equal(await notesOf(a, user.userId), 1, 'one note in the database')

  // The clients that got 409 retry after Retry-After: they get the replay.
  const later = await create(b, user.accessToken, 'storm', { title: 'Storm' })
  t.equal(later.headers['idempotent-replayed'], 'true')
  t.equal(later.body, originals[0]?.body)
})
