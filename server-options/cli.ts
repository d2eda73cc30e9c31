import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../config/load.js'
import { buildServerOptions } from './index.js'

/**
 * The `options` export of app.ts, for `fastify start --options dist/app.js`.
 * fastify-cli reads it after importing app.js, once to build the server and once
 * to register the app; the configuration is loaded on that first read (once), not
 * when the module is imported. An invalid configuration does not exit the process
 * here: the app refuses to start with its message (app.ts), which fastify-cli prints.
 */
export function cliServerOptions (cwd?: string): Record<string, unknown> {
  let options: Record<string, unknown> | undefined
  function resolve (): Record<string, unknown> {
    if (options !== undefined) return options
    const dir = cwd ?? process.cwd()
    const problems = startProblems(process.env, dir)
    try {
      const { config, warnings } = loadConfig(process.env, { dotenvDir: dir })
      // skipOverride: fastify-cli then registers the app as serve.ts and the tests do.
      options = problems.length > 0
        ? { configError: new ConfigError(problems), skipOverride: true }
        : { ...buildServerOptions(config), config, configWarnings: warnings, skipOverride: true }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      options = { configError: new ConfigError([...problems, ...err.problems]), skipOverride: true }
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

/**
 * `fastify start` is the development server's path, not production's
 * (docs/operations.md, "Starting the service"). fastify-cli 8 loads `.env` into
 * process.env before this module is imported, where its values can no longer be
 * told from the environment's; it listens on its own `--address` (localhost, or
 * 0.0.0.0 in a container), not HOST; and after SIGTERM it calls close() at once and
 * exits 500 ms later unless told otherwise, with no drain. Its flags are out of the
 * app's sight (it removes them from process.argv), so what cannot be checked is refused.
 */
function startProblems (env: NodeJS.ProcessEnv, dir: string): string[] {
  const environment = env.ENVIRONMENT?.trim() || 'development'
  const problems: string[] = []
  if (environment === 'production') {
    problems.push('fastify start is for development: in production start the service with `node dist/server.js` (or `npm start`), which keeps HOST, the drain on SIGTERM and the shutdown deadline, and never reads .env')
  }
  if (environment !== 'development' && existsSync(join(dir, '.env'))) {
    problems.push(`.env is read only in development, but fastify start (fastify-cli) has already loaded ${join(dir, '.env')} into the environment: remove it, or start with \`node dist/server.js\``)
  }
  return problems
}
