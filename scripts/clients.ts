import { parseArgs } from 'node:util'
import pg from 'pg'
import pino from 'pino'
import { loadConfigOrExit } from '../config/load.js'
import { cliDatabase } from '../db/cli-database.js'
import { ClientNameTaken, clientsRepository, type ClientsRepository } from '../db/clients.js'
import { runMigrations } from '../db/migrate.js'
import { CLIENT_NAME, SCOPE_TOKEN } from '../schemas/auth.js'
import { isUuid } from '../schemas/common.js'
import { securityEvent } from '../lib/security-events.js'

// `npm run clients -- <command>`: manages the service clients of the client
// credentials grant with the service's own configuration (same variables, same
// database, the embedded one in development). Output is one JSON line per result on
// stdout, so scripts can parse it; problems go to stderr with a non-zero exit code.

const USAGE = `usage:
  npm run clients -- create --name NAME --scopes "SCOPE [SCOPE...]"   (spaces or commas)
  npm run clients -- list
  npm run clients -- disable CLIENT_ID`

class UsageError extends Error {}
class Failure extends Error {}

interface Command { name: 'create', clientName: string, scopes: string[] }
type Parsed = Command | { name: 'list' } | { name: 'disable', id: string }

function parse (argv: string[]): Parsed {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: { name: { type: 'string' }, scopes: { type: 'string' } }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  const [command, ...rest] = positionals
  switch (command) {
    case 'create': {
      if (rest.length > 0) throw new UsageError(`unexpected argument: ${rest[0]}`)
      const name = values.name?.trim()
      if (name === undefined || name === '') throw new UsageError('create needs --name')
      if (!CLIENT_NAME.test(name)) throw new UsageError('--name must be 1 to 100 letters, digits, spaces or . _ : - (starting with a letter or digit)')
      const scopes = (values.scopes ?? '').split(/[\s,]+/).filter((s) => s !== '')
      if (scopes.length === 0) throw new UsageError('create needs --scopes with at least one scope')
      const bad = scopes.find((s) => !SCOPE_TOKEN.test(s))
      if (bad !== undefined) throw new UsageError('a scope must be 1 to 100 printable ASCII characters without spaces, quotes or backslashes')
      return { name: 'create', clientName: name, scopes: [...new Set(scopes)] }
    }
    case 'list':
      if (rest.length > 0 || values.name !== undefined || values.scopes !== undefined) throw new UsageError('list takes no arguments')
      return { name: 'list' }
    case 'disable': {
      if (rest.length !== 1 || values.name !== undefined || values.scopes !== undefined) throw new UsageError('disable takes exactly one CLIENT_ID')
      const id = rest[0] as string
      if (!isUuid(id)) throw new Failure(`no client with id ${JSON.stringify(id.slice(0, 100))}`)
      return { name: 'disable', id: id.toLowerCase() }
    }
    default:
      throw new UsageError(command === undefined ? 'missing command' : `unknown command: ${command}`)
  }
}

function print (value: object): void {
  process.stdout.write(JSON.stringify(value) + '\n')
}

async function run (command: Parsed, clients: ClientsRepository): Promise<void> {
  switch (command.name) {
    case 'create': {
      const client = await clients.create(command.clientName, command.scopes)
      // The only time the secret exists outside the caller's hands: it is not stored.
      print({ client_id: client.id, client_secret: client.secret, name: client.name, scopes: client.scopes })
      return
    }
    case 'list':
      for (const client of await clients.list()) {
        print({
          client_id: client.id,
          name: client.name,
          scopes: client.scopes,
          created_at: client.created_at.toISOString(),
          disabled_at: client.disabled_at?.toISOString() ?? null
        })
      }
      return
    case 'disable': {
      // Disabling notifies every running replica, which refuse the client's tokens at once.
      const client = await clients.disable(command.id)
      if (!client) throw new Failure(`no client with id ${command.id}`)
      print({ client_id: client.id, name: client.name, disabled_at: client.disabled_at?.toISOString() ?? null })
      // A security event like the service's own (docs/contract.md, "Security events"), on
      // stderr: stdout holds only results, one JSON line each.
      securityEvent({ log: pino({ base: { component: 'clients' } }, pino.destination({ fd: 2, sync: true })) }, 'client.disabled', { clientId: client.id, by: 'cli' })
    }
  }
}

async function main (): Promise<number> {
  let command: Parsed
  try {
    command = parse(process.argv.slice(2))
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`clients: ${err.message}\n${USAGE}\n`)
      return 2
    }
    process.stderr.write(`clients: ${(err as Error).message}\n`)
    return 1
  }

  const { config } = loadConfigOrExit()
  const db = await cliDatabase(config)
  const pool = new pg.Pool({ connectionString: db.connectionString, ssl: db.ssl, max: 2, connectionTimeoutMillis: 5000, application_name: 'secure-fastify-service:clients' })
  pool.on('error', () => {})
  try {
    const client = await pool.connect()
    try {
      await runMigrations(client)
    } finally {
      client.release()
    }
    await run(command, clientsRepository(pool))
    return 0
  } catch (err) {
    if (err instanceof Failure || err instanceof ClientNameTaken) process.stderr.write(`clients: ${err.message}\n`)
    else process.stderr.write(`clients: failed: ${(err as Error).message}\n`)
    return 1
  } finally {
    await pool.end().catch(() => {})
    await db.close().catch(() => {})
  }
}

process.exitCode = await main()
