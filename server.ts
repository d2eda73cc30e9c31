import Fastify from 'fastify'
import fp from 'fastify-plugin'
import closeWithGrace from 'close-with-grace'
import { loadConfigOrExit } from './lib/config.js'
import { buildServerOptions } from './server-options.js'

// Standalone entry (the container's command): validate the configuration before
// anything else, build the app with the shared server options, listen, and shut
// down gracefully as SPEC §5 describes.
const { config, warnings } = loadConfigOrExit()
const { default: app } = await import('./app.js')

const server = Fastify(buildServerOptions(config))
for (const warning of warnings) server.log.warn(warning)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// close-with-grace: a second signal, or the deadline, forces the exit (code 1).
closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT }, async function shutdown ({ signal, err }) {
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
  await server.listen({ host: config.HOST, port: config.PORT })
} catch (err) {
  server.log.fatal({ err }, 'failed to start')
  process.exit(1)
}
