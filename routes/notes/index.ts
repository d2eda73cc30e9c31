import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { ApiError, insufficientScope } from '../../lib/errors.js'
import { cursorCodec } from '../../lib/cursor.js'
import { etag, expectedVersions, noneMatch } from '../../lib/etag.js'
import { authenticated } from '../../schemas/openapi.js'
import { NoContent, NoQuery, errors, isUuid } from '../../schemas/common.js'
import {
  CreateNoteBody, IfMatchHeaders, IfNoneMatchHeaders, ListNotesQuery, NoteListSchema, NoteParams,
  UpdateNoteBody, noteResponse
} from '../../schemas/notes.js'

// One message for a missing note and another user's note: the answer must not tell
// them apart (ASVS 8.2.2).
function notFound (): ApiError {
  return new ApiError('NOT_FOUND', 'Note not found')
}

/** A malformed id names no note: 404, like any unknown id, never a 400 that says "this is not an id". */
function noteId (raw: string): string {
  if (!isUuid(raw)) throw notFound()
  return raw.toLowerCase()
}

/** Notes belong to users; a service client reads them but never writes them. */
function ownerOf (request: FastifyRequest): string {
  const principal = request.principal
  if (principal.kind !== 'user') {
    throw insufficientScope('Service clients may read notes but not change them')
  }
  return principal.userId
}

/**
 * /notes: the sample resource, and the pattern for a team's own: TypeBox schemas for
 * every input and every status, authentication for the whole folder, a scope per
 * route, data access through a repository decorator, ownership in every query.
 */
const notes: FastifyPluginAsyncTypebox = async function notes (fastify) {
  const cursors = cursorCodec(fastify.config.SECRET_KEY, 'notes-list')
  const notesTable = fastify.repos.notes
  const read = fastify.requireScope('notes:read')
  const write = fastify.requireScope('notes:write')

  // For the whole folder; each route then names its scope (plugins/app/auth/authenticate.ts).
  fastify.addHook('preParsing', fastify.authenticate)

  fastify.post('/', {
    // Safe retries: Idempotency-Key (docs/notes.md, "Safe retries").
    config: { idempotency: true },
    preParsing: write,
    schema: {
      tags: ['notes'],
      summary: 'Create a note',
      querystring: NoQuery,
      security: authenticated('notes:write'),
      body: CreateNoteBody,
      response: { 201: noteResponse('The new note', true), ...errors(400, 401, 403, 413, 415, 429) }
    }
  }, async function createNote (request, reply) {
    const owner = ownerOf(request)
    const note = await notesTable.create(owner, { title: request.body.title, body: request.body.body ?? '' })
    return reply.code(201)
      .header('location', `/notes/${note.id}`)
      .header('etag', etag(note.id, note.version))
      .send(note)
  })

  fastify.get('/', {
    preParsing: read,
    schema: {
      tags: ['notes'],
      summary: 'List notes, newest first',
      description: 'Keyset pagination: follow next_cursor until it is null. A page is never shifted by notes created meanwhile. ' +
        'Service clients list one user\'s notes with ?owner=.',
      security: authenticated('notes:read'),
      querystring: ListNotesQuery,
      response: { 200: NoteListSchema, ...errors(400, 401, 403, 429) }
    }
  }, async function listNotes (request) {
    const principal = request.principal
    const { limit, cursor, owner } = request.query
    let listed: string
    if (principal.kind === 'user') {
      if (owner !== undefined && owner.toLowerCase() !== principal.userId.toLowerCase()) {
        throw insufficientScope('Users may list only their own notes')
      }
      listed = principal.userId.toLowerCase()
    } else {
      if (owner === undefined) throw new ApiError('VALIDATION_ERROR', 'querystring must have property owner (service clients list one user\'s notes)')
      listed = owner.toLowerCase()
    }

    // The cursor is bound to the list it came from: replaying it on another owner's list is refused.
    const after = cursor === undefined ? null : cursors.decode(cursor, listed)
    if (after === null && cursor !== undefined) throw new ApiError('VALIDATION_ERROR', 'cursor is not valid for this list; start again without it')

    const page = await notesTable.list(listed, { limit, after })
    return { items: page.notes, next_cursor: page.next === null ? null : cursors.encode(page.next, listed) }
  })

  fastify.get('/:id', {
    preParsing: read,
    schema: {
      tags: ['notes'],
      summary: 'Read a note',
      querystring: NoQuery,
      security: authenticated('notes:read'),
      params: NoteParams,
      headers: IfNoneMatchHeaders,
      response: { 200: noteResponse('The note'), 304: NoContent('Not modified: If-None-Match holds the current ETag'), ...errors(401, 403, 404, 429) }
    }
  }, async function readNote (request, reply) {
    const id = noteId(request.params.id)
    const principal = request.principal
    const note = await notesTable.find(id, principal.kind === 'user' ? principal.userId : null)
    if (note === null) throw notFound()
    const tag = etag(note.id, note.version)
    reply.header('etag', tag)
    if (noneMatch(request.headers['if-none-match'], tag)) return reply.code(304).send()
    return note
  })

  fastify.patch('/:id', {
    preParsing: write,
    schema: {
      tags: ['notes'],
      summary: 'Change a note',
      querystring: NoQuery,
      description: 'Send If-Match with the ETag you read: if someone changed the note since, the answer is 412 and nothing changes.',
      security: authenticated('notes:write'),
      params: NoteParams,
      headers: IfMatchHeaders,
      body: UpdateNoteBody,
      response: { 200: noteResponse('The changed note'), ...errors(400, 401, 403, 404, 412, 413, 415, 429) }
    }
  }, async function updateNote (request, reply) {
    const id = noteId(request.params.id)
    const owner = ownerOf(request)
    const result = await notesTable.update(id, owner, request.body, expectedVersions(request.headers['if-match'], id))
    if (result.status === 'not_found') throw notFound()
    if (result.status === 'precondition_failed') throw new ApiError('PRECONDITION_FAILED', 'The note has changed since that ETag; read it again')
    return reply.header('etag', etag(result.value.id, result.value.version)).send(result.value)
  })

  fastify.delete('/:id', {
    preParsing: write,
    schema: {
      tags: ['notes'],
      summary: 'Delete a note',
      querystring: NoQuery,
      security: authenticated('notes:write'),
      params: NoteParams,
      headers: IfMatchHeaders,
      response: { 204: NoContent('Deleted'), ...errors(400, 401, 403, 404, 412, 429) }
    }
  }, async function deleteNote (request, reply) {
    const id = noteId(request.params.id)
    const owner = ownerOf(request)
    const result = await notesTable.remove(id, owner, expectedVersions(request.headers['if-match'], id))
    if (result.status === 'not_found') throw notFound()
    if (result.status === 'precondition_failed') throw new ApiError('PRECONDITION_FAILED', 'The note has changed since that ETag; read it again')
    return reply.code(204).send()
  })
}

export default notes
