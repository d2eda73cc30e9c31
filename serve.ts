import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import closeWithGrace from 'close-with-grace'
import type pino from 'pino'
import app from './app.js'
import type { LoadedConfig } from './config/load.js'
import type { Config } from './config/schema.js'
import { buildServerOptions } from './server-options/index.js'

export interface BuildOptions {
  /** Where log lines go instead of stdout (the test helper collects them). */
  logStream?: pino.DestinationStream
}

/** The app on a Fastify instance built with the shared server options: what serve() runs and the tests inject into. */
export async function buildServer (config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const server = Fastify(buildServerOptions(config, { logStream: options.logStream }))
  await server.register(fp(app), { config })
  return server
}

export interface ServeOptions {
  /** Runs once the app is registered and before listen: test fixtures add routes here. */
  beforeListen?: (server: FastifyInstance) => void | Promise<void>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Builds, listens, and shuts down gracefully (docs/operations.md, "Probes and
 * shutdown"). server.ts is this and nothing else, so the shutdown that the tests
 * exercise is the one production runs.
 */
export async function serve ({ config, warnings }: LoadedConfig, options: ServeOptions = {}): Promise<FastifyInstance> {
  const server = Fastify(buildServerOptions(config))
  for (const warning of warnings) server.log.warn(warning)

  // close-with-grace: a second signal, or the deadline, forces the exit (code 1).
  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT, logger: server.log }, async function shutdown ({ signal, err }) {
    if (err) server.log.error({ err }, 'fatal error, shutting down')
    server.log.info({ signal }, 'shutdown started')
    // Readiness turns 503 at once; requests are still served while load balancers
    // notice, then close() refuses new connections and lets in-flight ones finish.
    server.lifecycle?.beginShutdown()
    if (signal && config.SHUTDOWN_DRAIN_DELAY > 0) await sleep(config.SHUTDOWN_DRAIN_DELAY)
    await server.close()
    server.log.info('shutdown complete')
  })

  try {
    await server.register(fp(app), { config })
    await options.beforeListen?.(server)
    await server.listen({ host: config.HOST, port: config.PORT })
  } catch (err) {
    server.log.fatal({ err }, 'failed to start')
    process.exit(1)
  }
  return server
}
