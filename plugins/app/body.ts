import fp from 'fastify-plugin'

/**
 * Only JSON bodies are parsed (routes that take forms, such as /auth/token, add their
 * own parser). Fastify also parses text/plain by default: a browser may send that
 * cross-site without a CORS preflight, so it is removed (docs/edge.md, "CORS").
 */
export default fp(async function bodyPlugin (fastify) {
  fastify.removeContentTypeParser('text/plain')
}, { name: 'body' })
