import fp from 'fastify-plugin'
import type { Config } from '../config/schema.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated configuration, loaded once by the entry point (config/load.ts). */
    config: Config
  }
}

export interface ConfigPluginOptions {
  config: Config
}

/**
 * `fastify.config`: the configuration the entry point loaded and handed down. It is
 * not read again here: server options are built from it before Fastify exists.
 */
export default fp<ConfigPluginOptions>(async function configPlugin (fastify, opts) {
  fastify.decorate('config', opts.config)
}, { name: 'config', fastify: '5.x' })
