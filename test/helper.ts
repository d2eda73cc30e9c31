import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import pg from 'pg'
import t, { type Test } from 'tap'
import app from '../app.js'
import { loadConfig, type Config } from '../lib/config.js'
import { buildServerOptions } from '../server-options.js'

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

/** The configuration a test app runs with: test defaults plus the test's own variables. */
export async function testConfig (env: Record<string, string> = {}): Promise<Config> {
  return loadConfig({
    ENVIRONMENT: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: await testDatabaseUrl(),
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

/** A ready app built exactly as server.ts builds it, closed when the test ends. */
export async function build (test: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  const env = { ...(options.logs ? { LOG_LEVEL: 'info' } : {}), ...options.env }
  const config = await testConfig(env)
  const serverOptions = buildServerOptions(config)
  if (options.logs) {
    const lines = options.logs
    const stream = new Writable({
      write (chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line))
        done()
      }
    })
    serverOptions.logger = { ...(serverOptions.logger as object), stream }
  }
  const server = Fastify(serverOptions)
  await server.register(fp(app), { config })
  if (options.routes) {
    const routes = options.routes
    await server.register(async function testRoutes (instance) { await routes(instance) })
  }
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
