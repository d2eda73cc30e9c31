import fp from 'fastify-plugin'

/**
 * Sends the request id back on every response: errors, 404s, 429s and CORS
 * preflights included, because this hook runs first of all (the id itself is
 * chosen by genReqId in server-options.ts).
 */
export default fp(async function requestIdPlugin (fastify) {
  const header = fastify.config.REQUEST_ID_HEADER
  fastify.addHook('onRequest', function echoRequestId (request, reply, done) {
    reply.header(header, request.id)
    done()
  })
}, { name: 'request-id', dependencies: ['env'] })
