import fp from 'fastify-plugin'

/**
 * Sends the request id back on every response (the id itself is chosen by
 * genReqId, lib/request-id.ts). onSend runs for every reply, whichever hook or
 * handler sent it: errors, 404s, 429s and CORS preflights included.
 */
export default fp(async function requestIdPlugin (fastify) {
  const header = fastify.config.REQUEST_ID_HEADER
  fastify.addHook('onSend', function echoRequestId (request, reply, payload, done) {
    reply.header(header, request.id)
    done(null, payload)
  })
}, { name: 'request-id', dependencies: ['config'] })
