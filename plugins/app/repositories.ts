import fp from 'fastify-plugin'
import { repositories, type Repositories } from '../../db/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Every table behind a small interface (db/): routes hold no SQL. */
    repos: Repositories
  }
}

export default fp(async function repositoriesPlugin (fastify) {
  fastify.decorate('repos', repositories(fastify.pg.pool))
}, { name: 'repositories', dependencies: ['postgres'] })
