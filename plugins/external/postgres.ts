import fp from 'fastify-plugin'
import fastifyPostgres from '@fastify/postgres'
import { databaseConnection } from '../../config/database-url.js'
import { runMigrations } from '../../db/migrate.js'
import { startEmbeddedPostgres } from '../../db/embedded-postgres.js'

// An exhausted pool or an unreachable server fails fast with 503 instead of
// hanging the request (pg waits forever by default).
const CONNECT_TIMEOUT_MS = 2000
// No query may hold a connection longer than this (docs/contract.md: no hang past 5 s).
const STATEMENT_TIMEOUT_MS = 4000

/**
 * @fastify/postgres (`fastify.pg`) and its migrations. Without a database URL outside
 * production, an embedded PostgreSQL is started with its data in .data/postgres, so
 * that a newcomer needs no install at all.
 */
export default fp(async function postgresPlugin (fastify) {
  const config = fastify.config
  let url = config.DATABASE_URL
  if (url === undefined) {
    fastify.log.info({ dir: config.EMBEDDED_POSTGRES_DIR, port: config.EMBEDDED_POSTGRES_PORT }, 'starting embedded PostgreSQL (development)')
    const embedded = await startEmbeddedPostgres({ dir: config.EMBEDDED_POSTGRES_DIR, port: config.EMBEDDED_POSTGRES_PORT })
    url = embedded.url
    // onClose hooks run last-registered first: this one after the pool has ended.
    fastify.addHook('onClose', async function stopEmbeddedPostgres () { await embedded.stop() })
  }

  const connection = databaseConnection(url, config)
  await fastify.register(fastifyPostgres, {
    connectionString: connection.connectionString,
    ssl: connection.ssl,
    max: config.DATABASE_POOL_MAX,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: STATEMENT_TIMEOUT_MS + 1000,
    application_name: 'secure-fastify-service'
  })

  // pg emits 'error' when an idle client's backend dies (restart, failover,
  // pg_terminate_backend); without a listener that crashes the process.
  fastify.pg.pool.on('error', (err) => {
    // Only the error's own fields: pg attaches the whole client to it.
    fastify.log.warn({ code: (err as { code?: string }).code, reason: err.message }, 'idle PostgreSQL client lost; the pool will reconnect')
  })
  // A checked-out client (between two statements of a transaction) has no pool
  // listener, so its backend dying crashed the process too. Every client gets one
  // for life; its next query then fails as unavailable (503) and release() drops it.
  fastify.pg.pool.on('connect', (client) => {
    client.on('error', function checkedOutClientLost (err) {
      fastify.log.debug({ code: (err as { code?: string }).code, reason: err.message }, 'PostgreSQL client lost')
    })
  })

  if (config.MIGRATE_ON_START) {
    const client = await fastify.pg.connect()
    try {
      await runMigrations(client, fastify.log)
    } finally {
      client.release()
    }
  }
}, { name: 'postgres', dependencies: ['config'] })
