import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import pg from 'pg'
import Postgrator from 'postgrator'

// Any constant works; it only has to be the same for every replica of this service.
const MIGRATION_LOCK_ID = 727_274_001

interface Logger { info: (obj: object, msg?: string) => void }

/**
 * Applies the SQL files in migrations/ under a PostgreSQL advisory lock, so that
 * replicas starting together run each migration exactly once: the others wait
 * for the lock, then find nothing left to do.
 */
export async function runMigrations (client: pg.ClientBase, log?: Logger, dir = migrationsDir()): Promise<number> {
  const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db')
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID])
  try {
    const postgrator = new Postgrator({
      migrationPattern: join(dir, '*.sql'),
      driver: 'pg',
      database: rows[0]?.db ?? 'postgres',
      schemaTable: 'schema_migrations',
      execQuery: (query: string) => client.query(query)
    })
    const applied = await postgrator.migrate()
    if (applied.length > 0) log?.info({ migrations: applied.map((m) => m.filename) }, 'database migrations applied')
    return applied.length
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID])
  }
}

/** migrations/ sits at the project root, both beside the sources and beside dist/. */
export function migrationsDir (): string {
  const here = fileURLToPath(new URL('.', import.meta.url))
  return here.includes('/dist/') ? join(here, '..', '..', 'migrations') : join(here, '..', 'migrations')
}

export async function migrateUrl (connectionString: string, ssl: pg.ClientConfig['ssl'], log?: Logger): Promise<number> {
  const client = new pg.Client({ connectionString, ssl })
  await client.connect()
  try {
    return await runMigrations(client, log)
  } finally {
    await client.end()
  }
}
