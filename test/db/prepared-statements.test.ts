import t from 'tap'
import pg from 'pg'
import { runMigrations } from '../../db/migrate.js'
import { notesRepository } from '../../db/notes.js'
import { usersRepository } from '../../db/users.js'
import { createTestDatabase } from '../helper.js'

// The hot statements are named (db/notes.ts, db/users.ts): a connection prepares each
// once, and PostgreSQL no longer parses and plans it on every request (BENCHMARKS.md,
// "PostgreSQL per request"). Unnamed, pg_prepared_statements would stay empty.
t.test('the notes list, note reads and writes, and user look-ups are prepared once per connection and reused', async (t) => {
  const url = await createTestDatabase()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  await runMigrations(client)

  const users = usersRepository(client)
  const notes = notesRepository(client)
  const user = await users.create('prepared@example.com', 'not-a-real-hash')
  t.ok(user)
  const note = await notes.create(user!.id, { title: 'a', body: 'b' })
  for (let i = 0; i < 3; i++) {
    await notes.list(user!.id, { limit: 20, after: null })
    await notes.find(note.id, user!.id)
    await users.findById(user!.id)
  }
  const page = await notes.list(user!.id, { limit: 20, after: { createdAt: note.created_at, id: note.id } })
  t.same(page.notes, [], 'nothing is older than the only note')
  await users.findByEmail('prepared@example.com')

  const { rows } = await client.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name')
  t.same(rows.map((r) => r.name), ['notes-create', 'notes-find', 'notes-list-after', 'notes-list-first', 'users-find-by-email', 'users-find-by-id'])
})
