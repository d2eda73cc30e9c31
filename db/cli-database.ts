import type { Config } from '../config/schema.js'
import { databaseConnection, type DatabaseConnection } from '../config/database-url.js'
import { startEmbeddedPostgres } from './embedded-postgres.js'

/**
 * The database a command-line tool (migrate, clients) works on: the configured one,
 * or in development the same embedded PostgreSQL the server uses.
 */
export async function cliDatabase (config: Config): Promise<DatabaseConnection & { close: () => Promise<void> }> {
  if (config.DATABASE_URL !== undefined) {
    return { ...databaseConnection(config.DATABASE_URL, config), close: async () => {} }
  }
  const embedded = await startEmbeddedPostgres({ dir: config.EMBEDDED_POSTGRES_DIR, port: config.EMBEDDED_POSTGRES_PORT })
  return { ...databaseConnection(embedded.url, config), close: embedded.stop }
}
