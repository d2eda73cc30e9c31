import { randomBytes, randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import type pino from 'pino'
import t, { type Test } from 'tap'
import { loadConfig } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { buildServer } from '../serve.js'
import { buildServerOptions } from '../server-options/index.js'
import configPlugin from '../plugins/config.js'
import errorsPlugin from '../plugins/errors.js'
import { hashPassword } from '../lib/passwords.js'
import { normaliseEmail } from '../lib/credentials.js'

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? ''
if (!ADMIN_URL) throw new Error('TEST_DATABASE_URL is not set: run the tests with `npm test`')

let databaseUrl: Promise<string> | undefined

/** This test file's own database on the test server, dropped when the file ends. */
export function testDatabaseUrl (): Promise<string> {
  databaseUrl ??= createTestDatabase()
  return databaseUrl
}

export async function createTestDatabase (): Promise<string> {
  const name = `test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`)
  await admin.end()
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: ADMIN_URL })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)
    await c.end()
  })
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Limits high enough that no test meets them unless it sets its own: the one place
 * that takes the rate limiter out of the way (spawned servers use it too).
 */
export const GENEROUS_LIMITS = { RATE_LIMIT_MAX: '100000', RATE_LIMIT_AUTH_MAX: '1000' } as const

/** The configuration a test app runs with: test defaults plus the test's own variables. */
export async function testConfig (env: Record<string, string> = {}): Promise<Config> {
  return loadConfig({
    ENVIRONMENT: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: await testDatabaseUrl(),
    ...GENEROUS_LIMITS,
    ...env
  }).config
}

export interface BuildOptions {
  env?: Record<string, string>
  /** Receives every log line (as parsed JSON); sets LOG_LEVEL to info unless env says otherwise. */
  logs?: object[]
  /** Registers test-only routes after the app's plugins and routes, before ready. */
  routes?: (app: FastifyInstance) => void | Promise<void>
}

/** A writable stream that parses each log line into `lines`. */
export function lineCollector (lines: object[]): pino.DestinationStream {
  return new Writable({
    write (chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line))
      done()
    }
  })
}

/** A ready app built exactly as serve.ts builds it, closed when the test ends. */
export async function build (test: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  const env = { ...(options.logs ? { LOG_LEVEL: 'info' } : {}), ...options.env }
  const config = await testConfig(env)
  const server = await buildServer(config, { logStream: options.logs ? lineCollector(options.logs) : undefined })
  if (options.routes) {
    const routes = options.routes
    await server.register(async function testRoutes (instance) { await routes(instance) })
  }
  await server.ready()
  test.teardown(() => server.close())
  return server
}

/**
 * Plugins alone, as fastify-cli's app-ts template tests its plugins: the shared
 * server options, the configuration and the error handler, then only `plugins`
 * (each plugin's declared dependencies must be among them), then `routes`.
 */
export async function buildPlugins (test: Test, plugins: FastifyPluginAsync[], options: Omit<BuildOptions, 'logs'> = {}): Promise<FastifyInstance> {
  const config = await testConfig(options.env)
  const server = Fastify(buildServerOptions(config))
  await server.register(configPlugin, { config })
  await server.register(errorsPlugin)
  for (const plugin of plugins) await server.register(plugin)
  if (options.routes) await options.routes(server)
  await server.ready()
  test.teardown(() => server.close())
  return server
}

/** A valid production configuration for `env`: strong distinct secrets, a password in the database URL. */
export async function productionEnv (env: Record<string, string> = {}): Promise<Record<string, string>> {
  const url = new URL(env.DATABASE_URL ?? await testDatabaseUrl())
  // The test server uses trust authentication (any password works) or a non-default one.
  if (url.password === '') url.password = 'a-test-password-that-is-not-weak'
  return {
    ENVIRONMENT: 'production',
    SECRET_KEY: randomBytes(32).toString('base64url'),
    JWT_SECRET_KEY: randomBytes(32).toString('base64url'),
    DATABASE_SSL: 'disable',
    ...env,
    DATABASE_URL: url.toString()
  }
}

// --- Accounts, tokens and service clients (domain helpers) ---
// They work through the repositories and the token service, not over HTTP, so that
// tests never spend the small rate limit of /auth/login, /auth/register and /auth/token.

export const TEST_PASSWORD = 'correct horse battery staple'

export interface TestUser { id: string, email: string, password: string }

/** Creates an account (or finds it, when the email is taken) with `password`. */
export async function registerUser (app: FastifyInstance, options: { email?: string, password?: string } = {}): Promise<TestUser> {
  const email = normaliseEmail(options.email ?? `user-${randomBytes(6).toString('hex')}@example.test`)
  const password = options.password ?? TEST_PASSWORD
  const created = await app.repos.users.create(email, await hashPassword(password))
  const user = created ?? await app.repos.users.findByEmail(email)
  if (!user) throw new Error(`cannot register ${email}`)
  return { id: user.id, email: user.email, password }
}

export interface LoggedIn { accessToken: string, refreshToken: string, userId: string, email: string, sessionId: string }

/** A new login session for the user (registered first when needed), as POST /auth/login makes one. */
export async function loginAs (app: FastifyInstance, options: { email?: string, password?: string } = {}): Promise<LoggedIn> {
  const user = await registerUser(app, options)
  const refreshJti = randomUUID()
  const session = await app.repos.sessions.create(user.id, refreshJti, app.config.JWT_REFRESH_TOKEN_EXPIRES)
  const issued = app.tokens.issueForSession({ userId: user.id, sessionId: session.id, refreshJti, expiresAt: session.expires_at })
  return { accessToken: issued.accessToken, refreshToken: issued.refreshToken, userId: user.id, email: user.email, sessionId: session.id }
}

/** The headers that present `token` as the app's configuration expects (header, or cookie plus CSRF header). */
export function authHeaders (app: FastifyInstance, token: string): Record<string, string> {
  const config = app.config
  if (config.JWT_TOKEN_LOCATION.includes('headers')) {
    return { [config.JWT_HEADER_NAME.toLowerCase()]: config.JWT_HEADER_TYPE === '' ? token : `${config.JWT_HEADER_TYPE} ${token}` }
  }
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { csrf?: string }
  return { cookie: `access_token_cookie=${token}`, ...(claims.csrf !== undefined ? { 'x-csrf-token': claims.csrf } : {}) }
}

/** app.inject with the access token presented as the configuration expects. */
export function injectAs (app: FastifyInstance, token: string, options: InjectOptions): Promise<LightMyRequestResponse> {
  return app.inject({ ...options, headers: { ...authHeaders(app, token), ...(options.headers as Record<string, string> | undefined) } })
}

export interface TestClient { clientId: string, clientSecret: string, name: string, scopes: string[] }

/** A service client, as `npm run clients -- create` makes one. */
export async function createServiceClient (app: FastifyInstance, options: { name?: string, scopes: string[] }): Promise<TestClient> {
  const client = await app.repos.clients.create(options.name ?? `client-${randomBytes(4).toString('hex')}`, options.scopes)
  return { clientId: client.id, clientSecret: client.secret, name: client.name, scopes: client.scopes }
}

/**
 * An access token of a service client, as POST /auth/token grants it: for the client
 * `clientId`, or for a new client holding `scopes`; `scope` narrows the grant.
 */
export async function clientToken (app: FastifyInstance, options: { clientId?: string, name?: string, scopes?: string[], scope?: string[] } = {}): Promise<string> {
  let client: { id: string, name: string, scopes: string[] } | undefined
  if (options.clientId !== undefined) {
    client = await app.repos.clients.find(options.clientId)
    if (!client) throw new Error(`no client ${options.clientId}`)
  } else {
    const created = await createServiceClient(app, { name: options.name, scopes: options.scopes ?? ['notes:read'] })
    client = { id: created.clientId, name: created.name, scopes: created.scopes }
  }
  return app.tokens.issueForClient(client, options.scope ?? client.scopes).accessToken
}
