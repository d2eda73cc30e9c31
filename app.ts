import { join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import AutoLoad from '@fastify/autoload'
import { loadConfig, loadConfigOrExit, type Config } from './lib/config.js'
import { buildServerOptions, hasServerOptions } from './server-options.js'

export interface AppOptions {
  /** Validated configuration; read from the environment when absent (fastify start). */
  config?: Config
}

const here = import.meta.dirname

/**
 * The root plugin. Plugins in plugins/ are loaded first, in the order their declared
 * dependencies give (each is a named fastify-plugin; see the README's
 * architecture section for the order), then every folder of routes/ becomes a URL
 * prefix (routes/health → /health).
 */
const app: FastifyPluginAsync<AppOptions> = async function app (fastify, opts) {
  // Without the shared server options, request ids would go unvalidated, bodies be
  // coerced and stripped, logs unredacted and proxies untrusted-but-unknown: better
  // not to start than to run like that.
  if (!hasServerOptions(fastify.initialConfig)) {
    throw new Error('The server options are missing: start the app with `fastify start --options dist/app.js` (or `node dist/server.js`)')
  }
  let config = opts.config
  if (config === undefined) {
    // Started by `fastify start`: nobody else has read the configuration or said its warnings.
    const loaded = loadConfig(process.env, { dotenvDir: process.cwd() })
    for (const warning of loaded.warnings) fastify.log.warn(warning)
    config = loaded.config
  }

  await fastify.register(AutoLoad, {
    dir: join(here, 'plugins'),
    // Only the configuration travels into our plugins: never the root options.
    options: { config },
    forceESM: true,
    ignorePattern: /\.d\.ts$|\.map$/
  })

  await fastify.register(AutoLoad, {
    dir: join(here, 'routes'),
    options: {},
    forceESM: true,
    ignorePattern: /\.d\.ts$|\.map$/,
    autoHooks: true,
    cascadeHooks: true
  })
}

export default app

/**
 * Server options for `fastify start --options dist/app.js`: the same module that
 * server.ts and the tests use, so request ids, validation and logging never drift.
 * fastify-cli ignores this export unless --options is given.
 */
export const options = {
  ...buildServerOptions(loadConfigOrExit().config),
  // fastify-cli then registers the app as server.ts and the tests do (decorators visible).
  skipOverride: true
}
