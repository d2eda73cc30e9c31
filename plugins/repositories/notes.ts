import fp from 'fastify-plugin'
import type pg from 'pg'
import type { Position } from '../../lib/cursor.js'
import type { Note } from '../../schemas/notes.js'

/** The pool, or a client inside a transaction the caller controls. */
export type Queryable = Pick<pg.Pool, 'query'>

export interface NotePage {
  notes: Note[]
  /** Where the next page starts, when there is one. */
  next: Position | null
}

export type WriteResult<T> =
  | { status: 'done', value: T }
  | { status: 'not_found' }
  /** The note exists (for this owner) but is not at any of the expected versions. */
  | { status: 'precondition_failed' }

export interface NotesRepository {
  create: (ownerId: string, input: { title: string, body: string }, db?: Queryable) => Promise<Note>
  /** The note if `ownerId` owns it; with ownerId null, whoever owns it (service clients). */
  find: (id: string, ownerId: string | null, db?: Queryable) => Promise<Note | null>
  /** Newest first, `limit` notes after `after`. */
  list: (ownerId: string, page: { limit: number, after: Position | null }, db?: Queryable) => Promise<NotePage>
  /** `expected`: the versions the change may apply to (If-Match), or null for any. */
  update: (id: string, ownerId: string, changes: { title?: string, body?: string }, expected: number[] | null, db?: Queryable) => Promise<WriteResult<Note>>
  remove: (id: string, ownerId: string, expected: number[] | null, db?: Queryable) => Promise<WriteResult<void>>
}

declare module 'fastify' {
  interface FastifyInstance {
    notes: NotesRepository
  }
}

// Timestamps leave the database as text with every microsecond: a JS Date keeps only
// milliseconds, and a cursor built from a rounded time would skip or repeat notes.
const utc = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${column}`
const COLUMNS = `id, title, body, version, ${utc('created_at')}, ${utc('updated_at')}`

/** Every query is parameterised; no value is ever spliced into SQL text. */
export function notesRepository (pool: Queryable): NotesRepository {
  async function exists (db: Queryable, id: string, ownerId: string): Promise<boolean> {
    const { rowCount } = await db.query('SELECT 1 FROM notes WHERE id = $1 AND owner_id = $2', [id, ownerId])
    return rowCount === 1
  }

  return {
    async create (ownerId, { title, body }, db = pool) {
      const { rows } = await db.query<Note>(
        `INSERT INTO notes (owner_id, title, body) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
        [ownerId, title, body]
      )
      return rows[0]!
    },

    async find (id, ownerId, db = pool) {
      const { rows } = ownerId === null
        ? await db.query<Note>(`SELECT ${COLUMNS} FROM notes WHERE id = $1`, [id])
        : await db.query<Note>(`SELECT ${COLUMNS} FROM notes WHERE id = $1 AND owner_id = $2`, [id, ownerId])
      return rows[0] ?? null
    },

    async list (ownerId, { limit, after }, db = pool) {
      // One row more than asked says whether another page exists, without a count.
      const { rows } = after === null
        ? await db.query<Note>(
          `SELECT ${COLUMNS} FROM notes WHERE owner_id = $1
           ORDER BY notes.created_at DESC, id DESC LIMIT $2`,
          [ownerId, limit + 1])
        : await db.query<Note>(
          `SELECT ${COLUMNS} FROM notes WHERE owner_id = $1 AND (notes.created_at, id) < ($2::timestamptz, $3::uuid)
           ORDER BY notes.created_at DESC, id DESC LIMIT $4`,
          [ownerId, after.createdAt, after.id, limit + 1])
      const notes = rows.slice(0, limit)
      const last = notes[notes.length - 1]
      return { notes, next: rows.length > limit && last ? { createdAt: last.created_at, id: last.id } : null }
    },

    async update (id, ownerId, { title, body }, expected, db = pool) {
      // The version check is part of the UPDATE: of two writers holding the same ETag,
      // the second waits for the first's row lock, then sees the new version and matches nothing.
      const { rows } = await db.query<Note>(
        `UPDATE notes
            SET title = COALESCE($3, title), body = COALESCE($4, body),
                version = version + 1, updated_at = clock_timestamp()
          WHERE id = $1 AND owner_id = $2 AND ($5::integer[] IS NULL OR version = ANY ($5::integer[]))
          RETURNING ${COLUMNS}`,
        [id, ownerId, title ?? null, body ?? null, expected]
      )
      if (rows[0]) return { status: 'done', value: rows[0] }
      if (expected !== null && await exists(db, id, ownerId)) return { status: 'precondition_failed' }
      return { status: 'not_found' }
    },

    async remove (id, ownerId, expected, db = pool) {
      const { rowCount } = await db.query(
        `DELETE FROM notes
          WHERE id = $1 AND owner_id = $2 AND ($3::integer[] IS NULL OR version = ANY ($3::integer[]))`,
        [id, ownerId, expected]
      )
      if (rowCount === 1) return { status: 'done', value: undefined }
      if (expected !== null && await exists(db, id, ownerId)) return { status: 'precondition_failed' }
      return { status: 'not_found' }
    }
  }
}

/** `fastify.notes`: the notes table behind a small interface (routes hold no SQL). */
export default fp(async function notesRepositoryPlugin (fastify) {
  fastify.decorate('notes', notesRepository(fastify.pg))
}, { name: 'notes-repository', dependencies: ['postgres'] })
