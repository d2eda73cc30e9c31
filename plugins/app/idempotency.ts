import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, RouteOptions, preHandlerHookHandler } from 'fastify'
import { ApiError } from '../../lib/errors.js'
import { isKeptStatus, parseIdempotencyKey, requestFingerprint } from '../../lib/idempotency.js'
import { ErrorRef } from '../../schemas/common.js'
import type { StoredResponse } from '../../db/idempotency.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Honour Idempotency-Key on this route (docs/notes.md, "Safe retries"). */
    idempotency?: boolean
  }
}

/** A completed response is replayed for this long (docs/contract.md, "Safe retries"). */
export const KEY_TTL_MS = 24 * 60 * 60 * 1000
/**
 * A key claimed by a request that never finished (its replica died, or its deadline
 * passed) is free again after this long: far above any handler's life, whose every
 * query is bounded by the pool's query timeout.
 */
export const LEASE_MS = 60_000
const PRUNE_INTERVAL_MS = 10 * 60_000
/**
 * Keeping the response waits at most this long: the answer is already decided and
 * must not wait on a database that stopped answering. An outcome written later still
 * lands; one never written leaves the key in use until its lease ends.
 */
export const RECORD_TIMEOUT_MS = 1000
// The headers that are part of the result; the rest (request id, rate limits, dates) belong to each answer.
const KEPT_HEADERS = ['content-type', 'location', 'etag']
const HEADER = 'idempotency-key'

interface KeyState {
  principal: string
  key: string
  fingerprint: string
  /** Set while this request holds the key. */
  token?: string
}

const METHODS = new Set(['POST', 'PATCH'])

/**
 * Safe retries for any route with `config: { idempotency: true }` (docs/notes.md):
 * the first response to an Idempotency-Key, per principal, is kept in PostgreSQL for
 * 24 h and replayed with `Idempotent-Replayed: true`; the same key with another body
 * is 422, and while the first is still processed 409 with Retry-After. Hooks of the
 * route alone, so that other routes pay nothing: the key is read in preValidation
 * (after authentication, on the body as parsed, before schema defaults apply),
 * claimed in preHandler (after validation: an invalid body claims nothing), and the
 * response kept or the key released in onSend, before the answer leaves.
 */
export default fp(async function idempotencyPlugin (fastify) {
  const repo = fastify.repos.idempotency
  const states = new WeakMap<FastifyRequest, KeyState>()

  function principalOf (request: FastifyRequest): string {
    const principal = request.principal as FastifyRequest['principal'] | null
    // A route that turns this on without authentication is a defect: keys belong to a principal.
    if (!principal) throw new Error(`config.idempotency on ${request.routeOptions.url ?? request.url} needs fastify.authenticate`)
    return principal.kind === 'user' ? `user:${principal.userId.toLowerCase()}` : `client:${principal.clientId.toLowerCase()}`
  }

  function readKey (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
    const raw = request.headers[HEADER]
    if (raw === undefined) return done()
    const key = parseIdempotencyKey(raw)
    if (key === undefined) {
      return done(new ApiError('VALIDATION_ERROR', 'Idempotency-Key must be 1 to 255 visible ASCII characters without spaces, bare or in double quotes'))
    }
    let principal: string
    try {
      principal = principalOf(request)
    } catch (err) {
      return done(err as Error)
    }
    states.set(request, { principal, key, fingerprint: requestFingerprint(request.method, request.routeOptions.url ?? '', request.body) })
    done()
  }

  const claimKey: preHandlerHookHandler = async function claimKey (request, reply) {
    const state = states.get(request)
    if (state === undefined) return
    const result = await repo.claim(state.principal, state.key, state.fingerprint, { leaseMs: LEASE_MS, ttlMs: KEY_TTL_MS })
    switch (result.status) {
      case 'claimed':
        state.token = result.token
        return
      case 'reused':
        throw new ApiError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with another request; use a new key for a new request')
      case 'in_progress':
        throw new ApiError('IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still being processed; retry later', { 'retry-after': '1' })
      case 'completed': {
        const { statusCode, headers, body } = result.response
        return reply.code(statusCode).headers(headers).header('idempotent-replayed', 'true').send(body)
      }
    }
  }

  async function finish (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<void> {
    const state = states.get(request)
    const token = state?.token
    if (state === undefined || token === undefined) return
    state.token = undefined
    try {
      if (isKeptStatus(reply.statusCode) && (typeof payload === 'string' || Buffer.isBuffer(payload))) {
        const headers: Record<string, string> = {}
        for (const name of KEPT_HEADERS) {
          const value = reply.getHeader(name)
          if (value !== undefined) headers[name] = String(value)
        }
        const stored: StoredResponse = { statusCode: reply.statusCode, headers, body: payload.toString() }
        if (!await withinTime(repo.complete(state.principal, state.key, token, stored))) {
          request.log.warn({ idempotencyKeyLost: true }, 'the Idempotency-Key lease ran out before the response was kept; a retry will be processed again')
        }
      } else if (!request.deadlineExpired) {
        // After the deadline's 503 the handler may still be running, and committing:
        // the key stays in use until its lease ends rather than invite a second run.
        await withinTime(repo.release(state.principal, state.key, token))
      }
    } catch (err) {
      // The answer is already decided; a key left claimed is freed when its lease ends.
      request.log.warn({ reason: (err as Error).message }, 'could not record the Idempotency-Key outcome')
    }
  }

  fastify.addHook('onRoute', function idempotentRoute (route: RouteOptions) {
    if (route.config?.idempotency !== true) return
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    if (!methods.every((m) => METHODS.has(m))) throw new Error(`config.idempotency is for POST and PATCH routes, not ${methods.join(', ')} ${route.url}`)
    route.preValidation = [readKey, ...asList(route.preValidation)]
    // First among the route's own preHandlers: nothing of the route runs for a replay.
    route.preHandler = [claimKey, ...asList(route.preHandler)]
    route.onSend = [...asList(route.onSend), async function keepResponse (request, reply, payload) {
      await finish(request, reply, payload)
      return payload
    }]
    // An answer that never went through onSend (a hijacked reply) still frees the key.
    route.onResponse = [...asList(route.onResponse), async function releaseKey (request, reply) {
      await finish(request, reply, undefined)
    }]
    documentRoute(route)
  })

  const prune = setInterval(() => {
    repo.prune().then((deleted) => {
      if (deleted > 0) fastify.log.info({ deleted }, 'expired idempotency keys pruned')
    }, (err: Error) => fastify.log.warn({ reason: err.message }, 'pruning expired idempotency keys failed'))
  }, PRUNE_INTERVAL_MS)
  prune.unref()
  fastify.addHook('onClose', async function stopPruning () { clearInterval(prune) })
}, { name: 'idempotency', dependencies: ['repositories', 'authenticate', 'deadline'] })

/** The promise's outcome, or a rejection once RECORD_TIMEOUT_MS has passed. */
async function withinTime<T> (promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the database did not answer within ${RECORD_TIMEOUT_MS} ms`)), RECORD_TIMEOUT_MS)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

function asList<T> (hooks: T | T[] | undefined): T[] {
  if (hooks === undefined) return []
  return Array.isArray(hooks) ? hooks : [hooks]
}

/** The header and the two answers, in the route's OpenAPI description. */
function documentRoute (route: RouteOptions): void {
  const schema = route.schema
  if (schema === undefined) return
  const description = 'Makes a retry safe: the first response to this key is kept for 24 hours and replayed (Idempotent-Replayed: true). ' +
    '1 to 255 visible ASCII characters, bare or in double quotes.'
  // Copies: a schema object may be shared by several routes.
  const headers = (schema.headers ?? { type: 'object', properties: {} }) as { type?: string, properties?: Record<string, unknown> }
  if (headers.type === 'object') schema.headers = { ...headers, properties: { ...headers.properties, [HEADER]: { type: 'string', description } } }
  if (schema.response !== undefined && typeof schema.response === 'object') {
    schema.response = { 409: ErrorRef, 422: ErrorRef, ...(schema.response as Record<string, unknown>) }
  }
}
