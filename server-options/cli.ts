import { ConfigError, loadConfig } from '../config/load.js'
import { buildServerOptions } from './index.js'

/**
 * The `options` export of app.ts, for `fastify start --options dist/app.js`.
 * fastify-cli reads it after importing app.js, once to build the server and once
 * to register the app; the configuration is loaded on that first read (once), not
 * when the module is imported. An invalid configuration does not exit the process
 * here: the app refuses to start with its message (app.ts), which fastify-cli prints.
 */
export function cliServerOptions (): Record<string, unknown> {
  let options: Record<string, unknown> | undefined
  function resolve (): Record<string, unknown> {
    if (options !== undefined) return options
    try {
      const { config, warnings } = loadConfig(process.env, { dotenvDir: process.cwd() })
      // skipOverride: fastify-cli then registers the app as serve.ts and the tests do.
      options = { ...buildServerOptions(config), config, configWarnings: warnings, skipOverride: true }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      options = { configError: err, skipOverride: true }
    }
    return options
  }
  // Only reads are trapped; fastify-cli copies the object (Object.keys, then each value).
  return new Proxy({}, {
    get: (_target, key) => Reflect.get(resolve(), key),
    has: (_target, key) => Reflect.has(resolve(), key),
    ownKeys: () => Reflect.ownKeys(resolve()),
    getOwnPropertyDescriptor: (_target, key) => Reflect.getOwnPropertyDescriptor(resolve(), key)
  })
}
