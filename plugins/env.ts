import fp from 'fastify-plugin'
import fastifyEnv from '@fastify/env'
import { ConfigSchema } from '../schemas/config.js'
import { loadConfig, type Config } from '../lib/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface EnvPluginOptions {
  /** Already loaded configuration (server.ts, the test helper); read from the environment otherwise. */
  config?: Config
}

/**
 * Exposes the validated configuration as `fastify.config`. lib/config.ts does the
 * reading (files, aliases, defaults, production rules) because server options are
 * built from it before Fastify exists; @fastify/env checks the result against the
 * same schema and decorates it.
 */
export default fp<EnvPluginOptions>(async function envPlugin (fastify, opts) {
  const config = opts.config ?? loadConfig(process.env, { dotenvDir: process.cwd() }).config
  await fastify.register(fastifyEnv, {
    confKey: 'config',
    schema: structuredClone(ConfigSchema),
    data: config,
    // Only the loaded configuration counts: tests inject theirs, never process.env.
    env: false,
    dotenv: false
  } as Parameters<typeof fastifyEnv>[1])
}, { name: 'env', fastify: '5.x' })
