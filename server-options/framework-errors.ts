import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { codeForStatus, errorBody, reasonPhrase, type ErrorCode } from '../lib/errors.js'
import { completionLine } from './logging.js'

// Answers that Fastify and Node give before any hook runs still come in the one
// error shape with a request id (docs/contract.md, "Errors"), and with the headers
// no hook could add there.
const BARE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'"
}

/**
 * Errors Fastify raises while routing (a malformed percent-encoding, a path parameter
 * longer than maxParamLength) skip every hook and the error handler. An over-long
 * path parameter is an id that cannot exist: a 404 like any other.
 */
export function frameworkErrorHandler (requestIdHeader: string) {
  return function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    let statusCode = 500
    let code: ErrorCode = 'INTERNAL_ERROR'
    let message = 'An internal error occurred'
    if (error.code === 'FST_ERR_BAD_URL') {
      statusCode = 400
      code = 'BAD_REQUEST'
      message = 'The URL is malformed'
    } else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      statusCode = 404
      code = 'NOT_FOUND'
      message = `Route ${request.method} ${request.url.split('?')[0]} not found`
    }
    request.log.info({ code, statusCode, reason: error.code }, 'request refused')
    reply.code(statusCode).headers({ ...BARE_HEADERS, [requestIdHeader]: request.id })
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(errorBody(statusCode, code, message, request.id)))
    // The log controller is not called on this path: the completion line is written here.
    request.log.info(completionLine(request, reply, null), 'request completed')
  }
}

/**
 * Requests Node's HTTP parser refuses (bad header characters, headers over 16 KiB,
 * request timeouts) never become Fastify requests; they still get the error shape
 * and a fresh request id instead of Node's bare answer.
 */
export function clientErrorHandler (requestIdHeader: string) {
  return function clientError (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return
    const statusCode = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
    const id = randomUUID()
    const body = JSON.stringify(errorBody(statusCode, codeForStatus(statusCode), 'The request could not be read', id))
    this.log.debug({ reqId: id, code: error.code, statusCode }, 'client error')
    if (socket.writable) {
      const headers = Object.entries({ ...BARE_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), [requestIdHeader]: id, connection: 'close' })
        .map(([name, value]) => `${name}: ${value}\r\n`).join('')
      socket.write(`HTTP/1.1 ${statusCode} ${reasonPhrase(statusCode)}\r\n${headers}\r\n${body}`)
    }
    socket.destroy(error)
  }
}
