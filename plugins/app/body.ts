import fp from 'fastify-plugin'

/**
 * Only JSON bodies are parsed (routes that take forms, such as /auth/token, add their
 * own parser). Fastify also parses text/plain by default: a browser may send that
 * cross-site without a CORS preflight, so it is removed (docs/edge.md, "CORS").
 *
 * A DELETE has no body, but many HTTP clients send `content-type: application/json`
 * on every request: Fastify's JSON parser (kept, through its documented
 * getDefaultJsonParser, with the server's poisoning options) would refuse the empty
 * body with a 400, so an empty DELETE body is read as none. Any other empty JSON
 * body is still a 400, and a DELETE that does send JSON is parsed as before.
 */
export default fp(async function bodyPlugin (fastify) {
  fastify.removeContentTypeParser('text/plain')
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, function jsonUnlessEmptyDelete (request, body, done) {
    if (body.length === 0 && request.method === 'DELETE') {
      done(null, undefined)
      return
    }
    parseJson(request, body.toString(), done)
  })
}, { name: 'body' })
