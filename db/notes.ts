import type { Position } from '../lib/cursor.js'
import type { Note } from '../schemas/notes.js'
import { utcTimestamp, type Queryable, type WriteResult } from './queryable.js'

export interface NotePage {
  notes: Note[]
  /** Where the next page starts, when there is one. */
  next: Position | null
}

// Timestamps leave the database as text with every microsecond: a cursor built from a
// rounded time would skip or repeat notes.
const COLUMNS = `id, title, body, version, ${utcTimestamp('created_at')}, ${utcTimestamp('updated_at')}`

// The hot statements are named (pg's query config `{ name, text, values }`): each pooled
// connection prepares them once, and PostgreSQL then skips the parse and plan an unnamed
// statement pays on every request (BENCHMARKS.md, "PostgreSQL per request": its CPU per
// GET /notes fell by about half). A name stands for one text only, hence one per variant.

/** Notes; `db` on each method is a client inside a transaction the caller controls. Every query is parameterised. */
export function notesRepository (pool: Queryable) {
  async function exists (db: Queryable, id: string, ownerId: string): Promise<boolean> {
    const { rowCount } = await db.query({ name: 'notes-exists', text: 'SELECT 1 FROM notes WHERE id = $1 AND owner_id = $2', values: [id, ownerId] })
    return rowCount === 1
  }

  return {
    async create (ownerId: string, { title, body }: { title: string, body: string }, db: Queryable = pool): Promise<Note> {
      const { rows } = await db.query<Note>({
        name: 'notes-create',
        // One clock reading for both columns: their two clock_timestamp() defaults
        // (migrations/004.do.notes.sql) could differ by a microsecond on a new note.
        text: `WITH clock AS (SELECT clock_timestamp() AS at)
          INSERT INTO notes (owner_id, title, body, created_at, updated_at)
          VALUES ($1, $2, $3, (SELECT at FROM clock), (SELECT at FROM clock)) RETURNING ${COLUMNS}`,
        values: [ownerId, title, body]
      })
      return rows[0]!
    },

    /** The note if `ownerId` owns it; with ownerId null, whoever owns it (service clients). */
    async find (id: string, ownerId: string | null, db: Queryable = pool): Promise<Note | null> {
      const { rows } = ownerId === null
        ? await db.query<Note>({ name: 'notes-find-any', text: `SELECT ${COLUMNS} FROM notes WHERE id = $1`, values: [id] })
        : await db.query<Note>({ name: 'notes-find', text: `SELECT ${COLUMNS} FROM notes WHERE id = $1 AND owner_id = $2`, values: [id, ownerId] })
      return rows[0] ?? null
    },

    /** Newest first, `limit` notes after `after`. */
    async list (ownerId: string, { limit, after }: { limit: number, after: Position | null }, db: Queryable = pool): Promise<NotePage> {
      // One row more than asked says whether another page exists, without a count.
      const { rows } = after === null
        ? await db.query<Note>({
          name: 'notes-list-first',
          text: `SELECT ${COLUMNS} FROM notes WHERE owner_id = $1
           ORDER BY notes.created_at DESC, id DESC LIMIT $2`,
          values: [ownerId, limit + 1]
        })
        : await db.query<Note>({
          name: 'notes-list-after',
          text: `SELECT ${COLUMNS} FROM notes WHERE owner_id = $1 AND (notes.created_at, id) < ($2::timestamptz, $3::uuid)
           ORDER BY notes.created_at DESC, id DESC LIMIT $4`,
          values: [ownerId, after.createdAt, after.id, limit + 1]
        })
      const notes = rows.slice(0, limit)
      const last = notes[notes.length - 1]
      return { notes, next: rows.length > limit && last ? { createdAt: last.created_at, id: last.id } : null }
    },

    /** `expected`: the versions the change may apply to (If-Match), or null for any. */
    async update (id: string, ownerId: string, { title, body }: { title?: string, body?: string }, expected: number[] | null, db: Queryable = pool): Promise<WriteResult<Note>> {
      // The version check is part of the UPDATE: of two writers holding the same ETag,
      // the second waits for the first's row lock, then sees the new version and matches nothing.
      const { rows } = await db.query<Note>({
        name: 'notes-update',
        text: `UPDATE notes
            SET title = COALESCE($3, title), body = COALESCE($4, body),
                version = version + 1, updated_at = clock_timestamp()
          WHERE id = $1 AND owner_id = $2 AND ($5::integer[] IS NULL OR version = ANY ($5::integer[]))
          RETURNING ${COLUMNS}`,
        values: [id, ownerId, title ?? null, body ?? null, expected]
      })
      if (rows[0]) return { status: 'done', value: rows[0] }
      if (expected !== null && await exists(db, id, ownerId)) return { status: 'precondition_failed' }
      return { status: 'not_found' }
    },

    async remove (id: string, ownerId: string, expected: number[] | null, db: Queryable = pool): Promise<WriteResult<void>> {
      const { rowCount } = await db.query({
        name: 'notes-remove',
        text: `DELETE FROM notes
          WHERE id = $1 AND owner_id = $2 AND ($3::integer[] IS NULL OR version = ANY ($3::integer[]))`,
        values: [id, ownerId, expected]
      })
      if (rowCount === 1) return { status: 'done', value: undefined }
      if (expected !== null && await exists(db, id, ownerId)) return { status: 'precondition_failed' }
      return { status: 'not_found' }
    }
  }
}

export type NotesRepository = ReturnType<typeof notesRepository>
