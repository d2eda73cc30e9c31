import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { build, injectAs, loginAs } from '../helper.js'

// These tests send far more requests than the default rate limit allows in a minute.

interface Note { id: string, title: string, body: string, version: number }

async function createNote (app: FastifyInstance, token: string, payload: object = { title: 'Start', body: 'Start' }): Promise<{ note: Note, etag: string }> {
  const res = await injectAs(app, token, { method: 'POST', url: '/notes', payload })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return { note: res.json<Note>(), etag: String(res.headers.etag) }
}

t.test('20 concurrent PATCHes with the same If-Match: exactly one wins, 19 get 412', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note, etag } = await createNote(app, user.accessToken)

  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => injectAs(app, user.accessToken, {
    method: 'PATCH', url: `/notes/${note.id}`, headers: { 'if-match': etag }, payload: { title: `writer ${i}` }
  })))
  const statuses = results.map((r) => r.statusCode)
  t.equal(statuses.filter((s) => s === 200).length, 1, 'one 200')
  t.equal(statuses.filter((s) => s === 412).length, 19, 'nineteen 412')
  for (const r of results.filter((r) => r.statusCode === 412)) t.equal(r.json().code, 'PRECONDITION_FAILED')

  const winner = results.find((r) => r.statusCode === 200)!.json<Note>()
  const now = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${note.id}` })
  t.match(now.json(), { title: winner.title, version: 2 }, 'the stored note is the winner\'s, changed once')
})

t.test('20 concurrent PATCHes without If-Match all apply: no version is lost', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note } = await createNote(app, user.accessToken)
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => injectAs(app, user.accessToken, {
    method: 'PATCH', url: `/notes/${note.id}`, payload: { body: `b${i}` }
  })))
  t.same(results.map((r) => r.statusCode), Array(20).fill(200))
  t.same(results.map((r) => r.json<Note>().version).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 2),
    'each writer saw a distinct version')
  const now = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${note.id}` })
  t.equal(now.json().version, 21)
})

t.test('50 concurrent creates are all stored', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => injectAs(app, user.accessToken, {
    method: 'POST', url: '/notes', payload: { title: `c${i}` }
  })))
  t.same(results.map((r) => r.statusCode), Array(50).fill(201))
  const ids = new Set(results.map((r) => r.json<Note>().id))
  t.equal(ids.size, 50, 'fifty distinct notes')
  const listed = await injectAs(app, user.accessToken, { method: 'GET', url: '/notes?limit=100' })
  t.same(new Set(listed.json().items.map((n: Note) => n.id)), ids, 'all of them are listed')
})

t.test('If-Match: a stale, foreign, weak or unknown ETag is a 412 and changes nothing', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note, etag: v1 } = await createNote(app, user.accessToken)
  const other = await createNote(app, user.accessToken, { title: 'Other' })
  const v2 = String((await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, payload: { title: 'v2' } })).headers.etag)
  // The other note, brought to version 2 too: its ETag names the same version, not the same note.
  const otherV2 = String((await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${other.note.id}`, payload: { title: 'o2' } })).headers.etag)

  const refused = [v1, `W/${v2}`, otherV2, '"2"', '', '"99999999999-xxxxxxxxxxx"', `"2147483648-${v2.slice(3, -1)}"`, '"-1-xxxxxxxxxxx"', `"0${v2.slice(1)}`]
  for (const ifMatch of refused) {
    for (const method of ['PATCH', 'DELETE'] as const) {
      const res = await injectAs(app, user.accessToken, {
        method, url: `/notes/${note.id}`, headers: { 'if-match': ifMatch }, ...(method === 'PATCH' ? { payload: { title: 'lost update' } } : {})
      })
      t.equal(res.statusCode, 412, `${method} If-Match: ${ifMatch}`)
      t.equal(res.json().code, 'PRECONDITION_FAILED')
    }
  }
  const now = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${note.id}` })
  t.match(now.json(), { title: 'v2', version: 2 }, 'nothing changed')
  t.equal(now.headers.etag, v2)

  const missing = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${randomUUID()}`, headers: { 'if-match': v2 }, payload: { title: 'x' } })
  t.equal(missing.statusCode, 404, 'a missing note is a 404, whatever If-Match says')
})

t.test('If-Match: a malformed value (no quotes, doubled quotes, trailing text) is a 400 naming the header, not a 412, and changes nothing', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note, etag } = await createNote(app, user.accessToken)
  for (const ifMatch of [etag.slice(1, -1), `"${etag}"`, 'garbage', ` ${etag}x`, `${etag},, x`]) {
    for (const method of ['PATCH', 'DELETE'] as const) {
      const res = await injectAs(app, user.accessToken, {
        method, url: `/notes/${note.id}`, headers: { 'if-match': ifMatch }, ...(method === 'PATCH' ? { payload: { title: 'lost update' } } : {})
      })
      t.equal(res.statusCode, 400, `${method} If-Match: ${ifMatch}`)
      t.equal(res.json().code, 'VALIDATION_ERROR')
      t.match(res.json().message, /if-match/)
    }
  }
  const now = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${note.id}` })
  t.equal(now.headers.etag, etag, 'nothing changed')
})

t.test('If-Match: the current ETag, one of a list, or * lets the write through', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note, etag: v1 } = await createNote(app, user.accessToken)

  const exact = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, headers: { 'if-match': v1 }, payload: { title: 'v2' } })
  t.equal(exact.statusCode, 200)
  const v2 = String(exact.headers.etag)
  const listed = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, headers: { 'if-match': `${v1}, ${v2}` }, payload: { title: 'v3' } })
  t.equal(listed.statusCode, 200, 'any tag of the list may match')
  const star = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, headers: { 'if-match': '*' }, payload: { title: 'v4' } })
  t.equal(star.statusCode, 200, '* matches any existing note')
  t.equal(star.json().version, 4)

  const stale = await injectAs(app, user.accessToken, { method: 'DELETE', url: `/notes/${note.id}`, headers: { 'if-match': v2 } })
  t.equal(stale.statusCode, 412)
  const current = await injectAs(app, user.accessToken, { method: 'DELETE', url: `/notes/${note.id}`, headers: { 'if-match': String(star.headers.etag) } })
  t.equal(current.statusCode, 204)
  const starGone = await injectAs(app, user.accessToken, { method: 'DELETE', url: `/notes/${note.id}`, headers: { 'if-match': '*' } })
  t.equal(starGone.statusCode, 404)
})

t.test('concurrent DELETEs of one note: one 204, the rest 404', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note } = await createNote(app, user.accessToken)
  const results = await Promise.all(Array.from({ length: 10 }, () => injectAs(app, user.accessToken, { method: 'DELETE', url: `/notes/${note.id}` })))
  const statuses = results.map((r) => r.statusCode).sort()
  t.same(statuses, [204, ...Array(9).fill(404)])
})
