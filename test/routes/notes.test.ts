import { randomUUID } from 'node:crypto'
import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { build, clientToken, injectAs, loginAs } from '../helper.js'

// These tests send far more requests than the default rate limit allows in a minute.

interface Note { id: string, title: string, body: string, created_at: string, updated_at: string, version: number }

async function createNote (app: FastifyInstance, token: string, payload: object = { title: 'A note' }): Promise<{ note: Note, etag: string }> {
  const res = await injectAs(app, token, { method: 'POST', url: '/notes', payload })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return { note: res.json<Note>(), etag: String(res.headers.etag) }
}

/** The error body without its request id, to compare two answers. */
function shape (body: string): object {
  const { requestId, ...rest } = JSON.parse(body) as Record<string, unknown>
  return rest
}

const NOTE_KEYS = ['body', 'created_at', 'id', 'title', 'updated_at', 'version']

t.test('POST /notes creates a note: 201 with Location, ETag and the note', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const res = await injectAs(app, user.accessToken, { method: 'POST', url: '/notes', payload: { title: 'First' } })
  t.equal(res.statusCode, 201)
  const note = res.json<Note>()
  t.same(Object.keys(note).sort(), NOTE_KEYS, 'exactly the documented fields (no owner_id)')
  t.match(note, { title: 'First', body: '', version: 1 })
  t.match(note.id, /^[0-9a-f-]{36}$/)
  t.equal(note.created_at, note.updated_at)
  t.match(note.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/)
  t.equal(res.headers.location, `/notes/${note.id}`)
  t.match(res.headers.etag, /^"1-[A-Za-z0-9_-]{11}"$/)
  t.equal(res.headers['cache-control'], 'no-store')

  const read = await injectAs(app, user.accessToken, { method: 'GET', url: String(res.headers.location) })
  t.equal(read.statusCode, 200)
  t.same(read.json(), note)
  t.equal(read.headers.etag, res.headers.etag, 'the same version has the same ETag')

  const withBody = await createNote(app, user.accessToken, { title: 'Second', body: 'Some text' })
  t.equal(withBody.note.body, 'Some text')
})

t.test('GET /notes/:id answers 304 to If-None-Match with the current ETag', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note, etag } = await createNote(app, user.accessToken)
  const get = (headers: Record<string, string>) => injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${note.id}`, headers })

  for (const value of [etag, `W/${etag}`, `"0-xxxxxxxxxxx", ${etag}`, '*']) {
    const res = await get({ 'if-none-match': value })
    t.equal(res.statusCode, 304, `If-None-Match: ${value}`)
    t.equal(res.body, '')
    t.equal(res.headers.etag, etag, 'a 304 still names the ETag')
  }
  const head = await injectAs(app, user.accessToken, { method: 'HEAD', url: `/notes/${note.id}` })
  t.equal(head.statusCode, 200)
  t.equal(head.headers.etag, etag, 'HEAD names the ETag too')
  t.equal(head.body, '')

  for (const value of ['"1-xxxxxxxxxxx"', 'garbage', '""']) {
    const res = await get({ 'if-none-match': value })
    t.equal(res.statusCode, 200, `If-None-Match: ${value}`)
    t.equal(res.json<Note>().id, note.id)
  }

  const changed = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, payload: { body: 'new' } })
  const stale = await get({ 'if-none-match': etag })
  t.equal(stale.statusCode, 200, 'an old ETag gets the new version')
  t.equal(stale.headers.etag, changed.headers.etag)
  t.equal(stale.json<Note>().body, 'new')
})

t.test('PATCH /notes/:id changes the given fields: 200 with the new version and ETag', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note, etag } = await createNote(app, user.accessToken, { title: 'Title', body: 'Body' })

  const res = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, payload: { title: 'New title' } })
  t.equal(res.statusCode, 200)
  const changed = res.json<Note>()
  t.same(Object.keys(changed).sort(), NOTE_KEYS)
  t.match(changed, { id: note.id, title: 'New title', body: 'Body', version: 2, created_at: note.created_at })
  t.ok(changed.updated_at > note.updated_at, 'updated_at moves on')
  t.match(res.headers.etag, /^"2-/)
  t.not(res.headers.etag, etag)

  const body = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, payload: { body: '' } })
  t.match(body.json(), { title: 'New title', body: '', version: 3 }, 'an empty body is a value, not "no change"')
})

t.test('DELETE /notes/:id answers 204, and the note is gone', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note } = await createNote(app, user.accessToken)
  const res = await injectAs(app, user.accessToken, { method: 'DELETE', url: `/notes/${note.id}` })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  for (const options of [
    { method: 'GET', url: `/notes/${note.id}` },
    { method: 'PATCH', url: `/notes/${note.id}`, payload: { title: 'x' } },
    { method: 'DELETE', url: `/notes/${note.id}` }
  ] as InjectOptions[]) {
    const again = await injectAs(app, user.accessToken, options)
    t.equal(again.statusCode, 404, `${options.method} after delete`)
    t.equal(again.json().code, 'NOT_FOUND')
  }
})

t.test('GET /notes lists the caller\'s notes, newest first, 20 by default', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const other = await loginAs(app)
  await createNote(app, other.accessToken, { title: 'not mine' })
  const ids: string[] = []
  for (let i = 0; i < 23; i++) ids.push((await createNote(app, user.accessToken, { title: `n${i}` })).note.id)

  const res = await injectAs(app, user.accessToken, { method: 'GET', url: '/notes' })
  t.equal(res.statusCode, 200)
  const page = res.json<{ items: Note[], next_cursor: string | null }>()
  t.same(Object.keys(page).sort(), ['items', 'next_cursor'])
  t.same(page.items.map((n) => n.id), ids.slice().reverse().slice(0, 20))
  t.type(page.next_cursor, 'string')

  const all = await injectAs(app, user.accessToken, { method: 'GET', url: '/notes?limit=100' })
  t.equal(all.json().items.length, 23, 'another user\'s note is not listed')
  t.equal(all.json().next_cursor, null)

  const empty = await injectAs(app, (await loginAs(app)).accessToken, { method: 'GET', url: '/notes' })
  t.same(empty.json(), { items: [], next_cursor: null })
})

t.test('with cookie tokens, writes need the CSRF header and reads do not', async (t) => {
  const app = await build(t, { env: { JWT_TOKEN_LOCATION: 'cookies' } })
  const user = await loginAs(app)
  const cookie = `access_token_cookie=${user.accessToken}`

  const forged = await app.inject({ method: 'POST', url: '/notes', headers: { cookie }, payload: { title: 'cross-site' } })
  t.equal(forged.statusCode, 401, 'a cross-site POST carrying only the cookie is refused')
  t.equal(forged.json().code, 'AUTH_CSRF_FAILED')

  const created = await injectAs(app, user.accessToken, { method: 'POST', url: '/notes', payload: { title: 'same-site' } })
  t.equal(created.statusCode, 201, 'with X-CSRF-TOKEN')
  const id = created.json<Note>().id
  for (const [method, payload] of [['PATCH', { title: 'x' }], ['DELETE', undefined]] as const) {
    const res = await app.inject({ method, url: `/notes/${id}`, headers: { cookie }, ...(payload ? { payload } : {}) })
    t.equal(res.statusCode, 401, `${method} without X-CSRF-TOKEN`)
    t.equal(res.json().code, 'AUTH_CSRF_FAILED')
  }
  const read = await app.inject({ method: 'GET', url: `/notes/${id}`, headers: { cookie } })
  t.equal(read.statusCode, 200, 'a GET needs no CSRF header')
  t.match(read.json(), { title: 'same-site', version: 1 }, 'the refused writes changed nothing')
  const count = await app.pg.query('SELECT count(*)::int AS n FROM notes WHERE owner_id = $1', [user.userId])
  t.equal(count.rows[0].n, 1)
})

t.test('every notes route needs an access token', async (t) => {
  const app = await build(t, {})
  const id = randomUUID()
  const routes: InjectOptions[] = [
    { method: 'POST', url: '/notes', payload: { title: 'x' } },
    { method: 'GET', url: '/notes' },
    { method: 'GET', url: `/notes/${id}` },
    { method: 'PATCH', url: `/notes/${id}`, payload: { title: 'x' } },
    { method: 'DELETE', url: `/notes/${id}` }
  ]
  for (const route of routes) {
    const missing = await app.inject(route)
    t.equal(missing.statusCode, 401, `${route.method} ${route.url} without a token`)
    t.equal(missing.json().code, 'AUTH_MISSING_TOKEN')
    t.match(missing.headers['www-authenticate'], /^Bearer realm="api"/)

    const bad = await app.inject({ ...route, headers: { authorization: 'Bearer not.a.token' } })
    t.equal(bad.statusCode, 401, `${route.method} ${route.url} with a bad token`)
    t.equal(bad.json().code, 'AUTH_INVALID_TOKEN')
    t.match(bad.headers['www-authenticate'], /error="invalid_token"/)
  }

  // Authentication comes before the body is looked at: no schema detail for strangers.
  const invalid = await app.inject({ method: 'POST', url: '/notes', payload: { nope: 1 } })
  t.equal(invalid.statusCode, 401)
})

t.test('another user\'s note is a 404 indistinguishable from a missing one, for every method', async (t) => {
  const app = await build(t, {})
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const { note, etag } = await createNote(app, alice.accessToken, { title: 'Alice', body: 'private' })
  const missing = randomUUID()

  const cases = (id: string, headers: Record<string, string> = {}): InjectOptions[] => [
    { method: 'GET', url: `/notes/${id}`, headers },
    { method: 'PATCH', url: `/notes/${id}`, payload: { title: 'Bob was here' }, headers },
    { method: 'DELETE', url: `/notes/${id}`, headers }
  ]
  for (const headers of [{}, { 'if-match': etag }, { 'if-none-match': etag }] as Array<Record<string, string>>) {
    const theirs = cases(note.id, headers)
    const none = cases(missing, headers)
    for (let i = 0; i < theirs.length; i++) {
      const a = await injectAs(app, bob.accessToken, theirs[i]!)
      const b = await injectAs(app, bob.accessToken, none[i]!)
      t.equal(a.statusCode, 404, `${theirs[i]!.method} on another user's note ${JSON.stringify(headers)}`)
      t.same(shape(a.body), shape(b.body), 'same answer as for a note that does not exist')
      t.equal(a.headers.etag, undefined, 'no ETag leaks')
    }
  }

  const list = await injectAs(app, bob.accessToken, { method: 'GET', url: '/notes' })
  t.same(list.json().items, [])
  const still = await injectAs(app, alice.accessToken, { method: 'GET', url: `/notes/${note.id}` })
  t.match(still.json(), { title: 'Alice', body: 'private', version: 1 }, 'nothing changed')
})

t.test('a malformed note id is a 404, never a 400 or 500', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const ids = ['not-a-uuid', '1', "'%20OR%201=1--", `{${randomUUID()}}`, randomUUID().replace(/-/g, ''), `${randomUUID()}x`, 'a'.repeat(100), '%00']
  for (const id of ids) {
    for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
      const res = await injectAs(app, user.accessToken, { method, url: `/notes/${id}`, ...(method === 'PATCH' ? { payload: { title: 'x' } } : {}) })
      t.equal(res.statusCode, 404, `${method} /notes/${id}`)
      t.equal(res.json().code, 'NOT_FOUND')
    }
  }
  const upper = await createNote(app, user.accessToken)
  const res = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${upper.note.id.toUpperCase()}` })
  t.equal(res.statusCode, 200, 'an upper-case UUID names the same note')
  t.equal(res.headers.etag, upper.etag)
})

t.test('scopes: notes:read reads, notes:write writes, no scope does nothing', async (t) => {
  const app = await build(t, {})
  const alice = await loginAs(app)
  const { note } = await createNote(app, alice.accessToken)
  const writes: InjectOptions[] = [
    { method: 'POST', url: '/notes', payload: { title: 'x' } },
    { method: 'PATCH', url: `/notes/${note.id}`, payload: { title: 'x' } },
    { method: 'DELETE', url: `/notes/${note.id}` }
  ]
  const reads: InjectOptions[] = [
    { method: 'GET', url: `/notes?owner=${alice.userId}` },
    { method: 'GET', url: `/notes/${note.id}` }
  ]

  const reader = await clientToken(app, { scopes: ['notes:read'] })
  for (const route of writes) {
    const res = await injectAs(app, reader, route)
    t.equal(res.statusCode, 403, `notes:read client: ${route.method} ${route.url}`)
    t.equal(res.json().code, 'AUTH_INSUFFICIENT_SCOPE')
    t.match(res.headers['www-authenticate'], /error="insufficient_scope"/)
  }
  // The scope check runs before validation: no schema detail for a caller who may not write.
  const early = await injectAs(app, reader, { method: 'POST', url: '/notes', payload: { bogus: true } })
  t.equal(early.statusCode, 403)

  const writer = await clientToken(app, { scopes: ['notes:write'] })
  for (const route of reads) {
    const res = await injectAs(app, writer, route)
    t.equal(res.statusCode, 403, `notes:write client: ${route.method} ${route.url}`)
    t.equal(res.json().code, 'AUTH_INSUFFICIENT_SCOPE')
  }

  const nothing = await clientToken(app, { scopes: ['notes:read'], scope: [] })
  for (const route of [...reads, ...writes]) {
    const res = await injectAs(app, nothing, route)
    t.equal(res.statusCode, 403, `token without scopes: ${route.method} ${route.url}`)
    t.equal(res.json().code, 'AUTH_INSUFFICIENT_SCOPE')
  }

  const still = await injectAs(app, alice.accessToken, { method: 'GET', url: `/notes/${note.id}` })
  t.match(still.json(), { title: 'A note', version: 1 }, 'no refused write changed anything')
})

t.test('service clients read any note and list one user\'s notes, but never write', async (t) => {
  const app = await build(t, {})
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const a1 = await createNote(app, alice.accessToken, { title: 'a1' })
  const a2 = await createNote(app, alice.accessToken, { title: 'a2' })
  const b1 = await createNote(app, bob.accessToken, { title: 'b1' })
  const service = await clientToken(app, { scopes: ['notes:read', 'notes:write'] })

  const read = await injectAs(app, service, { method: 'GET', url: `/notes/${b1.note.id}` })
  t.equal(read.statusCode, 200)
  t.same(read.json(), b1.note)
  t.equal(read.headers.etag, b1.etag)
  const cached = await injectAs(app, service, { method: 'GET', url: `/notes/${a1.note.id}`, headers: { 'if-none-match': a1.etag } })
  t.equal(cached.statusCode, 304)
  const missing = await injectAs(app, service, { method: 'GET', url: `/notes/${randomUUID()}` })
  t.equal(missing.statusCode, 404)

  const list = await injectAs(app, service, { method: 'GET', url: `/notes?owner=${alice.userId}` })
  t.equal(list.statusCode, 200)
  t.same(list.json().items.map((n: Note) => n.id), [a2.note.id, a1.note.id], 'only that user\'s notes, newest first')
  const nobody = await injectAs(app, service, { method: 'GET', url: `/notes?owner=${randomUUID()}` })
  t.same(nobody.json(), { items: [], next_cursor: null })

  const all = await injectAs(app, service, { method: 'GET', url: '/notes' })
  t.equal(all.statusCode, 400, 'a client must name the owner')
  t.equal(all.json().code, 'VALIDATION_ERROR')

  for (const route of [
    { method: 'POST', url: '/notes', payload: { title: 'x' } },
    { method: 'PATCH', url: `/notes/${a1.note.id}`, payload: { title: 'x' } },
    { method: 'DELETE', url: `/notes/${a1.note.id}` }
  ] as InjectOptions[]) {
    const res = await injectAs(app, service, route)
    t.equal(res.statusCode, 403, `client with notes:write: ${route.method}`)
    t.equal(res.json().code, 'AUTH_INSUFFICIENT_SCOPE')
  }
  const count = await app.pg.query('SELECT count(*)::int AS n FROM notes WHERE owner_id = ANY ($1)', [[alice.userId, bob.userId]])
  t.equal(count.rows[0].n, 3, 'nothing created or deleted')
})

t.test('a user who names another owner gets 403; naming themselves is fine', async (t) => {
  const app = await build(t, {})
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  await createNote(app, alice.accessToken)
  const foreign = await injectAs(app, bob.accessToken, { method: 'GET', url: `/notes?owner=${alice.userId}` })
  t.equal(foreign.statusCode, 403)
  t.equal(foreign.json().code, 'AUTH_INSUFFICIENT_SCOPE')
  t.match(foreign.headers['www-authenticate'], /error="insufficient_scope"/)
  const unknown = await injectAs(app, bob.accessToken, { method: 'GET', url: `/notes?owner=${randomUUID()}` })
  t.equal(unknown.statusCode, 403, 'an unknown owner too: no probing for account ids')
  const own = await injectAs(app, alice.accessToken, { method: 'GET', url: `/notes?owner=${alice.userId.toUpperCase()}` })
  t.equal(own.statusCode, 200)
  t.equal(own.json().items.length, 1)
})

t.test('POST /notes refuses bad input with the error shape, and stores nothing', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    injectAs(app, user.accessToken, { method: 'POST', url: '/notes', headers: { 'content-type': 'application/json', ...headers }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })

  const cases: Array<[string, unknown, number, string]> = [
    ['no title', { body: 'x' }, 400, 'VALIDATION_ERROR'],
    ['empty title', { title: '' }, 400, 'VALIDATION_ERROR'],
    ['title of 201 characters', { title: 'x'.repeat(201) }, 400, 'VALIDATION_ERROR'],
    ['title as a number', { title: 123 }, 400, 'VALIDATION_ERROR'],
    ['title as an array', { title: ['x'] }, 400, 'VALIDATION_ERROR'],
    ['title null', { title: null }, 400, 'VALIDATION_ERROR'],
    ['body of 20001 characters', { title: 'x', body: 'y'.repeat(20_001) }, 400, 'VALIDATION_ERROR'],
    ['body as an object', { title: 'x', body: { a: 1 } }, 400, 'VALIDATION_ERROR'],
    ['body null', { title: 'x', body: null }, 400, 'VALIDATION_ERROR'],
    ['an unknown field', { title: 'x', owner_id: randomUUID() }, 400, 'VALIDATION_ERROR'],
    ['a version', { title: 'x', version: 7 }, 400, 'VALIDATION_ERROR'],
    ['NUL in the title', { title: 'a\u0000b' }, 400, 'VALIDATION_ERROR'],
    ['NUL in the body', { title: 'x', body: 'a\u0000b' }, 400, 'VALIDATION_ERROR'],
    ['a lone surrogate', '{"title":"a\\ud800b"}', 400, 'VALIDATION_ERROR'],
    ['an array', [{ title: 'x' }], 400, 'VALIDATION_ERROR'],
    ['a string', '"title"', 400, 'VALIDATION_ERROR'],
    ['broken JSON', '{"title": "x"', 400, 'BAD_REQUEST'],
    ['__proto__', '{"title":"x","__proto__":{"admin":true}}', 400, 'BAD_REQUEST'],
    ['an empty body', '', 400, 'BAD_REQUEST']
  ]
  for (const [name, payload, status, code] of cases) {
    const res = await post(payload)
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, code, name)
    t.type(res.json().requestId, 'string')
  }

  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json-patch+json']) {
    const res = await post('{"title":"x"}', { 'content-type': type })
    t.equal(res.statusCode, 415, type)
    t.equal(res.json().code, 'UNSUPPORTED_MEDIA_TYPE')
  }
  const untyped = await injectAs(app, user.accessToken, { method: 'POST', url: '/notes', payload: Buffer.from('{"title":"x"}') })
  t.equal(untyped.statusCode, 415, 'no Content-Type')

  const count = await app.pg.query('SELECT count(*)::int AS n FROM notes WHERE owner_id = $1', [user.userId])
  t.equal(count.rows[0].n, 0, 'nothing was stored')

  // The limits are inclusive, and count characters (code points), not bytes or UTF-16 units.
  const longest = await post({ title: '😀'.repeat(200), body: 'é'.repeat(20_000) })
  t.equal(longest.statusCode, 201, '200 emoji and 20000 accented characters fit')
  t.equal(longest.json().title, '😀'.repeat(200))
})

t.test('a body over BODY_LIMIT is a 413', async (t) => {
  const app = await build(t, { env: { BODY_LIMIT: '1024' } })
  const user = await loginAs(app)
  const res = await injectAs(app, user.accessToken, { method: 'POST', url: '/notes', payload: { title: 'x', body: 'y'.repeat(2000) } })
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'PAYLOAD_TOO_LARGE')
})

t.test('PATCH /notes/:id refuses bad input and changes nothing', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note } = await createNote(app, user.accessToken, { title: 'Keep', body: 'Keep' })
  const cases: Array<[string, unknown]> = [
    ['no field', {}],
    ['title null', { title: null }],
    ['title empty', { title: '' }],
    ['title as a number', { title: 1 }],
    ['title too long', { title: 'x'.repeat(201) }],
    ['body too long', { body: 'x'.repeat(20_001) }],
    ['an unknown field', { title: 'x', owner_id: randomUUID() }],
    ['the version', { version: 99 }],
    ['the id', { id: randomUUID() }]
  ]
  for (const [name, payload] of cases) {
    const res = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, payload: payload as object })
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().code, 'VALIDATION_ERROR', name)
  }
  const text = await injectAs(app, user.accessToken, { method: 'PATCH', url: `/notes/${note.id}`, headers: { 'content-type': 'text/plain' }, payload: '{"title":"x"}' })
  t.equal(text.statusCode, 415)
  const after = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes/${note.id}` })
  t.match(after.json(), { title: 'Keep', body: 'Keep', version: 1 })
})

t.test('GET /notes refuses bad query strings', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  for (const query of ['limit=0', 'limit=101', 'limit=abc', 'limit=1.5', 'limit=-1', 'limit=1&limit=2', 'sort=title', 'owner=not-a-uuid', 'cursor=', 'cursor=%00', `cursor=${'a'.repeat(513)}`]) {
    const res = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes?${query}` })
    t.equal(res.statusCode, 400, query)
    t.equal(res.json().code, 'VALIDATION_ERROR', query)
  }
  for (const limit of [1, 100]) {
    const res = await injectAs(app, user.accessToken, { method: 'GET', url: `/notes?limit=${limit}` })
    t.equal(res.statusCode, 200, `limit=${limit}`)
  }
})

t.test('a method a notes path does not serve is a 404', async (t) => {
  const app = await build(t, {})
  const user = await loginAs(app)
  const { note } = await createNote(app, user.accessToken)
  for (const [method, url] of [['PUT', `/notes/${note.id}`], ['DELETE', '/notes'], ['PATCH', '/notes'], ['POST', `/notes/${note.id}`]] as const) {
    const res = await injectAs(app, user.accessToken, { method, url, payload: { title: 'x' } })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.json().code, 'NOT_FOUND')
  }
})

t.test('the OpenAPI document describes every notes route and status', async (t) => {
  const app = await build(t, {})
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  const paths = doc.paths as Record<string, Record<string, { security: unknown[], responses: Record<string, unknown> }>>
  t.same(Object.keys(paths['/notes']!).sort(), ['get', 'post'])
  t.same(Object.keys(paths['/notes/{id}']!).sort(), ['delete', 'get', 'patch'])
  // 409 and 422: Idempotency-Key (plugins/app/idempotency.ts documents the header and both answers).
  t.same(Object.keys(paths['/notes']!.post!.responses).sort(), ['201', '400', '401', '403', '409', '413', '415', '422', '429', '500', '503'])
  t.match((paths['/notes']!.post! as { parameters?: unknown[] }).parameters, [{ in: 'header', name: 'idempotency-key' }])
  t.same(Object.keys(paths['/notes/{id}']!.patch!.responses).sort(), ['200', '400', '401', '403', '404', '412', '413', '415', '429', '500', '503'])
  t.same(Object.keys(paths['/notes/{id}']!.get!.responses).sort(), ['200', '304', '401', '403', '404', '429', '500', '503'])
  t.same(paths['/notes/{id}']!.delete!.security, [{ bearerAuth: [] }, { oauth2: ['notes:write'] }])
  t.match(paths['/notes']!.post!.responses['201'], { headers: { location: { schema: { type: 'string' } }, etag: { schema: { type: 'string' } } } })
})
