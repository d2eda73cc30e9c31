import fp from 'fastify-plugin'
import { errorBody } from '../../lib/errors.js'

/**
 * Unknown URLs, and methods a path does not serve, are a 404 in the error shape.
 * They count against the client's rate limit, or probing them would be free.
 */
export default fp(async function notFoundPlugin (fastify) {
  fastify.setNotFoundHandler({ preHandler: fastify.rateLimit() }, function notFound (request, reply) {
    reply.code(404).type('application/json; charset=utf-8')
      .send(errorBody(404, 'NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`, request.id))
  })
}, { name: 'not-found', dependencies: ['errors', 'rate-limit'] })
