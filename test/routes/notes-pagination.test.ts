import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { cursorCodec } from '../../lib/cursor.js'
import { build, clientToken, injectAs, loginAs } from '../helper.js'

// These tests send far more requests than the default rate limit allows in a minute.

interface Note { id: string, title: string, created_at: string }
interface Page { items: Note[], next_cursor: string | null }

async function createNote (app: FastifyInstance, token: string, title: string): Promise<Note> {
  const res = await injectAs(app, token, { method: 'POST', url: '/notes', payload: { title } })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return res.json<Note>()
}

async function page (app: FastifyInstance, token: string, query: string): Promise<Page> {
  const res = await injectAs(app, token, { method: 'GET', url: `/notes?${query}` })
  if (res.statusCode !== 200) throw new Error(`list failed: ${res.statusCode} ${res.body}`)
  return res.json<Page>()
}

/** Every page, following next_cursor; `between` runs after each page. */
async function walk (app: FastifyInstance, token: string, limit: number, extra = '', between?: (n: number) => Promise<void>): Promise<{ ids: string[], pages: number }> {
  const ids: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const p: Page = await page(app, token, `limit=${limit}${extra}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
    pages++
    ids.push(...p.items.map((n) => n.id))
    cursor = p.next_cursor
    if (between) await between(pages)
    if (pages > 1000) throw new Error('runaway pagination')
  } while (cursor !== null)
  return { ids, pages }
}

t.test('pages through every note once, newest first, with no empty last page', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const created: string[] = []
  for (let i = 0; i < 12; i++) created.push((await createNote(app, user.accessToken, `n${i}`)).id)
  const newestFirst = created.slice().reverse()

  for (const limit of [1, 3, 4, 5, 12, 100]) {
    const { ids, pages } = await walk(app, user.accessToken, limit)
    t.same(ids, newestFirst, `limit=${limit}: every note once, in order`)
    t.equal(pages, Math.max(1, Math.ceil(12 / limit)), `limit=${limit}: ${pages} pages`)
  }
})

t.test('stays stable when notes are created and deleted between pages', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const original: string[] = []
  for (let i = 0; i < 10; i++) original.push((await createNote(app, user.accessToken, `old${i}`)).id)
  const expected = original.slice().reverse()

  const added: string[] = []
  const { ids } = await walk(app, user.accessToken, 3, '', async () => {
    // Several writers insert while the reader pages: the new notes are newer than
    // any cursor, so they never shift the pages still to come.
    const news = await Promise.all([1, 2, 3].map((i) => createNote(app, user.accessToken, `new${i}`)))
    added.push(...news.map((n) => n.id))
  })
  t.same(ids, expected, 'exactly the notes that existed, no duplicates, no skips')
  t.equal(new Set(ids).size, ids.length)
  t.notOk(ids.some((id) => added.includes(id)), 'notes created meanwhile are not on later pages')

  const fresh = await walk(app, user.accessToken, 100)
  t.equal(fresh.ids.length, 10 + added.length, 'a fresh listing sees them')

  // The note a cursor points at may disappear: the next page is still right.
  const first = await page(app, user.accessToken, 'limit=2')
  const last = first.items[1]!
  const del = await injectAs(app, user.accessToken, { method: 'DELETE', url: `/notes/${last.id}` })
  t.equal(del.statusCode, 204)
  const next = await page(app, user.accessToken, `limit=2&cursor=${encodeURIComponent(first.next_cursor!)}`)
  const all = fresh.ids
  t.same(next.items.map((n) => n.id), all.slice(2, 4), 'continues after the deleted note')
})

t.test('orders notes created in the same microsecond, and microseconds apart, without loss', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  // Times a JS Date cannot tell apart (same millisecond), and ties broken only by id.
  const times = ['2024-01-01T00:00:00.000001Z', '2024-01-01T00:00:00.000002Z', '2024-01-01T00:00:00.000999Z',
    '2024-01-01T00:00:00.000002Z', '2024-01-01T00:00:00.000002Z']
  for (const [i, at] of times.entries()) {
    await app.pg.query('INSERT INTO notes (owner_id, title, created_at, updated_at) VALUES ($1, $2, $3, $3)', [user.userId, `t${i}`, at])
  }
  const { rows } = await app.pg.query<{ id: string }>(
    'SELECT id FROM notes WHERE owner_id = $1 ORDER BY created_at DESC, id DESC', [user.userId])
  const { ids } = await walk(app, user.accessToken, 1)
  t.same(ids, rows.map((r) => r.id), 'one by one, the database\'s order exactly')
  const listed = await page(app, user.accessToken, 'limit=100')
  t.same(listed.items.map((n) => n.created_at).sort(), times.slice().sort(), 'timestamps keep their microseconds')
})

t.test('refuses a forged, edited or garbled cursor with a 400, never a 500 or a wrong page', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  for (let i = 0; i < 5; i++) await createNote(app, user.accessToken, `n${i}`)
  const cursor = (await page(app, user.accessToken, 'limit=2')).next_cursor!
  t.match(cursor, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
  const good = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes?limit=2&cursor=${cursor}` })
  t.equal(good.statusCode, 200)

  const bad: string[] = []
  // Every single-character change, in the position and in the MAC.
  for (let i = 0; i < cursor.length; i++) {
    if (cursor[i] === '.') continue
    const c = cursor[i] === 'A' ? 'B' : 'A'
    bad.push(cursor.slice(0, i) + c + cursor.slice(i + 1))
  }
  const [payload, mac] = cursor.split('.') as [string, string]
  const position = Buffer.from(payload, 'base64url').toString()
  const [createdAt] = position.split('|')
  // The same MAC bytes, spelled differently: the last character's unused low bits changed.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const twin = alphabet[alphabet.indexOf(mac.at(-1)!) ^ 1]!
  t.same(Buffer.from(mac.slice(0, -1) + twin, 'base64url'), Buffer.from(mac, 'base64url'), 'a non-canonical spelling of the MAC')
  bad.push(
    `${payload}.${mac.slice(0, -1)}${twin}`,
    payload, `${payload}.`, `.${mac}`, `${cursor}.x`, `${payload}.${mac}${mac}`, `${payload}.${mac.slice(0, -2)}`,
    // A position the client chose itself, with the old MAC or none.
    `${Buffer.from(`${createdAt}|${randomUUID()}`).toString('base64url')}.${mac}`,
    `${Buffer.from('2999-01-01T00:00:00.000000Z|00000000-0000-0000-0000-000000000000').toString('base64url')}.${mac}`,
    // Signed with another key, as a cursor made up by someone who guessed the format.
    cursorCodec('not-the-secret-key', 'notes-list').encode({ createdAt: createdAt!, id: randomUUID() }, user.userId),
    'x', '..', '-_-_', 'eyJhbGciOiJIUzI1NiJ9.e30'
  )
  for (const value of bad) {
    const res = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes?limit=2&cursor=${encodeURIComponent(value)}` })
    t.equal(res.statusCode, 400, `cursor ${value}`)
    t.equal(res.json().code, 'VALIDATION_ERROR')
  }
})

t.test('a cursor belongs to the list it came from: another owner\'s list refuses it', async (t) => {
  const app = await build(t, {})
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  for (let i = 0; i < 3; i++) {
    await createNote(app, alice.accessToken, `a${i}`)
    await createNote(app, bob.accessToken, `b${i}`)
  }
  const aliceCursor = (await page(app, alice.accessToken, 'limit=1')).next_cursor!
  const replay = await injectAs(app, bob.accessToken, { method: 'GET', url: `/notes?limit=1&cursor=${aliceCursor}` })
  t.equal(replay.statusCode, 400, 'Alice\'s cursor on Bob\'s list')
  t.equal(replay.json().code, 'VALIDATION_ERROR')

  const service = await clientToken(app, { scopes: ['notes:read'] })
  const clientPage = await page(app, service, `limit=1&owner=${alice.userId}`)
  const crossed = await injectAs(app, service, { method: 'GET', url: `/notes?limit=1&owner=${bob.userId}&cursor=${clientPage.next_cursor!}` })
  t.equal(crossed.statusCode, 400, 'a cursor for owner A is refused for owner B')
  // Same list, same owner: whoever reads it may continue.
  const aliceContinues = await injectAs(app, alice.accessToken, { method: 'GET', url: `/notes?limit=1&cursor=${clientPage.next_cursor!}` })
  t.equal(aliceContinues.statusCode, 200)

  const walked = await walk(app, service, 1, `&owner=${alice.userId}`)
  t.equal(walked.ids.length, 3, 'a client pages through one user\'s notes')
})

t.test('cursors do not survive a change of SECRET_KEY', async (t) => {
  const first = await build(t, { env: { SECRET_KEY: 'first-secret-key-first-secret-key-1234' } })
  const user = await loginAs(first)
  for (let i = 0; i < 3; i++) await createNote(first, user.accessToken, `n${i}`)
  const cursor = (await page(first, user.accessToken, 'limit=1')).next_cursor!
  const second = await build(t, { env: { SECRET_KEY: 'second-secret-key-second-secret-key-12' } })
  const res = await injectAs(second, user.accessToken, { method: 'GET', url: `/notes?limit=1&cursor=${cursor}` })
  t.equal(res.statusCode, 400)
})

t.test('the list query reads the owner index in order, however many notes there are', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  await app.pg.query(
    `INSERT INTO notes (owner_id, title, created_at)
     SELECT $1, 'bulk ' || g, now() - make_interval(secs => g) FROM generate_series(1, 5000) g`, [user.userId])
  await app.pg.query('ANALYZE notes')
  const { rows } = await app.pg.query<{ 'QUERY PLAN': string }>(
    `EXPLAIN SELECT id FROM notes WHERE owner_id = $1 AND (notes.created_at, id) < ($2::timestamptz, $3::uuid)
     ORDER BY notes.created_at DESC, id DESC LIMIT 21`, [user.userId, '2100-01-01T00:00:00Z', randomUUID()])
  const plan = rows.map((r) => r['QUERY PLAN']).join('\n')
  t.match(plan, /Index (Only )?Scan using notes_owner_created_id/, plan)
  t.notMatch(plan, /Sort/, 'no sort of the whole list')
})
