import { join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import AutoLoad from '@fastify/autoload'
import type { Config } from './config/schema.js'
import configPlugin from './plugins/config.js'
import errorsPlugin from './plugins/errors.js'
import { cliServerOptions } from './server-options/cli.js'

export interface AppOptions {
  /** The configuration, loaded once by the entry point (serve.ts, fastify-cli's `options`). */
  config?: Config
  /** Start-up warnings of that configuration, said once (fastify-cli only; serve.ts says them). */
  configWarnings?: string[]
  /** fastify-cli only: the configuration could not be loaded; the app refuses with its message. */
  configError?: Error
}

const here = import.meta.dirname
const AUTOLOAD = { forceESM: true, ignorePattern: /\.d\.ts$|\.map$/ } as const

/**
 * The root plugin (README, "Architecture"): the configuration and the error handler,
 * then the library plugins of plugins/external, then ours in plugins/app, each in
 * the order its declared dependencies give, then every folder of routes/ as a URL
 * prefix (routes/health → /health). Nothing runs when this module is imported.
 */
const app: FastifyPluginAsync<AppOptions> = async function app (fastify, opts) {
  if (opts.configError) throw opts.configError
  // `fastify start` without --options passes none of the server options (request id
  // validation, strict bodies, redaction, timeouts): better not to start than to run so.
  if (opts.config === undefined) {
    throw new Error('The server options are missing: start the app with `fastify start --options dist/app.js` (or `node dist/server.js`)')
  }
  for (const warning of opts.configWarnings ?? []) fastify.log.warn(warning)

  await fastify.register(configPlugin, { config: opts.config })
  await fastify.register(errorsPlugin)
  // Only the configuration travels into the plugins (as fastify.config), never the root options.
  const plugins = { ...AUTOLOAD, options: {}, dirNameRoutePrefix: false }
  await fastify.register(AutoLoad, { ...plugins, dir: join(here, 'plugins', 'external') })
  await fastify.register(AutoLoad, { ...plugins, dir: join(here, 'plugins', 'app') })
  await fastify.register(AutoLoad, { ...AUTOLOAD, dir: join(here, 'routes'), options: {}, autoHooks: true, cascadeHooks: true })
}

export default app

/** For `fastify start --options dist/app.js`: the server options serve.ts uses (server-options/cli.ts). */
export const options = cliServerOptions()
