import { Type, type Static, type TSchema } from 'typebox'
import { UuidSchema } from './common.js'

export const TITLE_MAX = 200
export const BODY_MAX = 20_000
export const LIMIT_DEFAULT = 20
export const LIMIT_MAX = 100

// U+0000 and lone surrogates are refused in every string by server-options/validation.ts.
const Title = Type.String({ minLength: 1, maxLength: TITLE_MAX, description: '1 to 200 characters' })
const bodyOptions = { maxLength: BODY_MAX, description: 'Up to 20000 characters' }
const Body = Type.String(bodyOptions)
const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339, UTC, microseconds' })

export const NoteSchema = Type.Object({
  id: UuidSchema,
  title: Type.String(),
  body: Type.String(),
  created_at: Timestamp,
  updated_at: Timestamp,
  version: Type.Integer({ minimum: 1, description: 'Grows by one on every change; the ETag names it' })
}, { title: 'Note' })
export type Note = Static<typeof NoteSchema>

export const NoteListSchema = Type.Object({
  items: Type.Array(NoteSchema),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as ?cursor= for the next page; null on the last page' })
}, { title: 'NoteList', description: 'A page of notes, newest first' })

export const CreateNoteBody = Type.Object({
  title: Title,
  body: Type.Optional(Type.String({ ...bodyOptions, default: '' }))
}, { additionalProperties: false, title: 'NewNote' })

export const UpdateNoteBody = Type.Object({
  title: Type.Optional(Title),
  body: Type.Optional(Body)
}, { additionalProperties: false, minProperties: 1, title: 'NoteChanges', description: 'At least one field' })

export const ListNotesQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: LIMIT_MAX, default: LIMIT_DEFAULT }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9_.-]+$', description: 'next_cursor of the previous page' })),
  owner: Type.Optional(Type.String({ ...UuidSchema, description: 'Service clients: whose notes to list (required). Users: only their own id' }))
}, { additionalProperties: false })

// Not a UUID schema: a malformed id is a 404 like any unknown id, so the handler
// checks it. The length cap keeps the check cheap.
export const NoteParams = Type.Object({
  id: Type.String({ maxLength: 100, description: 'Note id (UUID)' })
}, { additionalProperties: false })

const ETagHeader = Type.String({ description: 'Strong entity tag of this version of the note' })

// RFC 9110 §8.8.3 and §13.1.1: `*`, or a comma list of entity tags, each quoted
// (optionally W/-prefixed). Anything else (a tag pasted without its quotes, or with
// its quotes doubled) is a malformed request, 400, not a stale tag, 412.
const ENTITY_TAG = '(W/)?"[\\x21\\x23-\\x7E\\x80-\\xFF]*"'
// An empty list (`#entity-tag` allows none) is well-formed, and matches nothing.
export const IF_MATCH_PATTERN = `^[ \\t]*(\\*|(${ENTITY_TAG}([ \\t]*,[ \\t]*${ENTITY_TAG})*)?)[ \\t]*$`

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({
    maxLength: 1024,
    pattern: IF_MATCH_PATTERN,
    description: 'Apply the change only if the note still has one of these ETags, quotes included, as sent (else 412); a malformed value is a 400'
  }))
})
export const IfNoneMatchHeaders = Type.Object({
  'if-none-match': Type.Optional(Type.String({ maxLength: 1024, description: 'Answer 304 if the note still has one of these ETags' }))
})

/** A response with the note and its ETag (and its Location when created). */
export function noteResponse (description: string, location = false): TSchema {
  return Type.Object(NoteSchema.properties, {
    title: 'Note',
    description,
    headers: location
      ? { etag: ETagHeader, location: Type.String({ description: 'The URL of the new note' }) }
      : { etag: ETagHeader }
  })
}
