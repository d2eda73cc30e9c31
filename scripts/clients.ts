import { parseArgs } from 'node:util'
import pg from 'pg'
import { readFileSync } from 'node:fs'
import pino from 'pino'
import { loadConfigOrExit } from '../config/load.js'
import { isIssuerUrl } from '../config/rules.js'
import type { Config } from '../config/schema.js'
import { cliDatabase } from '../db/cli-database.js'
import { ClientNameTaken, FederatedIdentityTaken, clientsRepository, type Client, type ClientsRepository } from '../db/clients.js'
import { runMigrations } from '../db/migrate.js'
import { InvalidJwks, parseClientJwks } from '../lib/client-keys.js'
import { CLIENT_NAME, SCOPE_TOKEN } from '../schemas/auth.js'
import { isUuid } from '../schemas/common.js'
import { securityEvent } from '../lib/security-events.js'

// `npm run clients -- <command>`: manages the service clients of the client
// credentials grant with the service's own configuration (same variables, same
// database, the embedded one in development). Output is one JSON line per result on
// stdout, so scripts can parse it; problems go to stderr with a non-zero exit code.

const USAGE = `usage:
  npm run clients -- create --name NAME --scopes "SCOPE [SCOPE...]"   (spaces or commas)
        [--jwks-file FILE | --federated-issuer URL --federated-subject SUBJECT [--jwks-uri URL]]
  npm run clients -- list
  npm run clients -- disable CLIENT_ID`

class UsageError extends Error {}
class Failure extends Error {}

/** How the new client will authenticate: a secret (the default), its own keys, or a federated identity. */
type Method = { kind: 'secret' } | { kind: 'keys', file: string } | { kind: 'federated', issuer: string, subject: string, jwksUri?: string }
interface Command { name: 'create', clientName: string, scopes: string[], method: Method }
type Parsed = Command | { name: 'list' } | { name: 'disable', id: string }

const OPTIONS = {
  name: { type: 'string' },
  scopes: { type: 'string' },
  'jwks-file': { type: 'string' },
  'federated-issuer': { type: 'string' },
  'federated-subject': { type: 'string' },
  'jwks-uri': { type: 'string' }
} as const

function methodOf (values: { 'jwks-file'?: string, 'federated-issuer'?: string, 'federated-subject'?: string, 'jwks-uri'?: string }): Method {
  const { 'jwks-file': file, 'federated-issuer': issuer, 'federated-subject': subject, 'jwks-uri': jwksUri } = values
  const federated = issuer !== undefined || subject !== undefined || jwksUri !== undefined
  if (file !== undefined && federated) throw new UsageError('--jwks-file and --federated-* are two authentication methods: choose one')
  if (file !== undefined) return { kind: 'keys', file }
  if (!federated) return { kind: 'secret' }
  if (issuer === undefined || subject === undefined) throw new UsageError('a federated client needs both --federated-issuer and --federated-subject')
  if (!isIssuerUrl(issuer)) throw new UsageError('--federated-issuer must be an issuer URL (http(s)://host[/path], no query or fragment)')
  if (subject.trim() === '' || subject.length > 2000) throw new UsageError('--federated-subject must be 1 to 2000 characters')
  if (jwksUri !== undefined && !isIssuerUrl(jwksUri)) throw new UsageError('--jwks-uri must be an http(s) URL')
  return { kind: 'federated', issuer, subject, ...(jwksUri !== undefined ? { jwksUri } : {}) }
}

function parse (argv: string[]): Parsed {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  const [command, ...rest] = positionals
  const onlyCreate = Object.keys(values).some((k) => k !== 'name' && k !== 'scopes')
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
      return { name: 'create', clientName: name, scopes: [...new Set(scopes)], method: methodOf(values) }
    }
    case 'list':
      if (rest.length > 0 || values.name !== undefined || values.scopes !== undefined || onlyCreate) throw new UsageError('list takes no arguments')
      return { name: 'list' }
    case 'disable': {
      if (rest.length !== 1 || values.name !== undefined || values.scopes !== undefined || onlyCreate) throw new UsageError('disable takes exactly one CLIENT_ID')
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

/** What a client line shows of how the client authenticates (never a secret or a hash). */
function methodFields (client: Client): Record<string, string> {
  if (client.auth_method !== 'federated') return { auth_method: client.auth_method }
  return {
    auth_method: client.auth_method,
    federated_issuer: client.federated_issuer ?? '',
    federated_subject: client.federated_subject ?? '',
    ...(client.jwks_uri !== null ? { jwks_uri: client.jwks_uri } : {})
  }
}

/**
 * The checks a new key-pair or federated client needs from the configuration: a
 * client that could never authenticate, or that names an issuer that may not be
 * contacted, is refused now rather than at its first token request.
 */
function checkMethod (method: Method, config: Config): void {
  const production = config.ENVIRONMENT === 'production'
  if (method.kind === 'keys' && config.JWT_ISSUER === undefined) {
    throw new Failure('a --jwks-file client needs JWT_ISSUER: its assertions must name it (or its token endpoint) as aud')
  }
  if (method.kind !== 'federated') return
  if (config.JWT_AUDIENCE === undefined && config.JWT_ISSUER === undefined) {
    throw new Failure('a federated client needs JWT_AUDIENCE or JWT_ISSUER: its tokens must name this service as aud')
  }
  const allowed = config.FEDERATION_ALLOWED_ISSUERS
  if (allowed !== undefined ? !allowed.includes(method.issuer) : production) {
    throw new Failure(`FEDERATION_ALLOWED_ISSUERS does not name ${method.issuer}${allowed === undefined ? ' (in production it must)' : ''}`)
  }
  if (production && [method.issuer, method.jwksUri ?? 'https://'].some((url) => !url.startsWith('https://'))) {
    throw new Failure('in production the issuer and --jwks-uri must be https:// URLs')
  }
}

async function create (command: Command, clients: ClientsRepository, config: Config): Promise<void> {
  const { clientName, scopes, method } = command
  checkMethod(method, config)
  if (method.kind === 'secret') {
    const client = await clients.create(clientName, scopes)
    // The only time the secret exists outside the caller's hands: it is not stored.
    print({ client_id: client.id, client_secret: client.secret, name: client.name, scopes: client.scopes })
    return
  }
  if (method.kind === 'keys') {
    let text: string
    try {
      text = readFileSync(method.file, 'utf8')
    } catch {
      throw new Failure(`cannot read --jwks-file ${method.file}`)
    }
    const client = await clients.createWithKeys(clientName, scopes, await parseClientJwks(text))
    print({ client_id: client.id, name: client.name, scopes: client.scopes, ...methodFields(client), kids: client.keys.map((k) => k.kid) })
    return
  }
  const client = await clients.createFederated(clientName, scopes, { issuer: method.issuer, subject: method.subject, jwksUri: method.jwksUri })
  print({ client_id: client.id, name: client.name, scopes: client.scopes, ...methodFields(client) })
}

async function run (command: Parsed, clients: ClientsRepository, config: Config): Promise<void> {
  switch (command.name) {
    case 'create':
      return create(command, clients, config)
    case 'list':
      for (const client of await clients.list()) {
        print({
          client_id: client.id,
          name: client.name,
          scopes: client.scopes,
          ...methodFields(client),
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
    await run(command, clientsRepository(pool), config)
    return 0
  } catch (err) {
    if (err instanceof InvalidJwks) process.stderr.write(`clients: --jwks-file: ${err.message}\n`)
    else if (err instanceof Failure || err instanceof ClientNameTaken || err instanceof FederatedIdentityTaken) process.stderr.write(`clients: ${err.message}\n`)
    else process.stderr.write(`clients: failed: ${(err as Error).message}\n`)
    return 1
  } finally {
    await pool.end().catch(() => {})
    await db.close().catch(() => {})
  }
}

process.exitCode = await main()
