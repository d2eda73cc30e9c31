import { randomUUID } from 'node:crypto'
import { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type {} from '@fastify/rate-limit'
import type { Config } from '../config/schema.js'
import { ApiError, codeForStatus, errorBody, reasonPhrase, type ErrorCode } from '../lib/errors.js'
import { securityHeaderValues } from '../lib/security-headers.js'
import { completionLine } from './logging.js'

// The one writer of the answers that Fastify and Node give before any hook runs
// (docs/edge.md, "Answers given before any hook"): the error shape with a request id
// (docs/contract.md, "Errors"), and the security headers of every other response,
// the same values plugins/external/security-headers.ts gives routed requests
// (lib/security-headers.ts), so the two cannot drift apart.

type Limiter = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => Promise<void>
const limiters = new WeakMap<FastifyInstance, Limiter | null>()

/** The global rate limiter of @fastify/rate-limit (fastify.rateLimit(), its documented hook), when the app has one. */
function limiterOf (server: FastifyInstance): Limiter | null {
  let limiter = limiters.get(server)
  if (limiter === undefined) {
    limiter = server.hasDecorator('rateLimit') ? server.rateLimit() as Limiter : null
    limiters.set(server, limiter)
  }
  return limiter
}

export interface ErrorWriter {
  /** Sets the security headers on a response of Node's (a routed reply's raw response, or one only used to collect them). */
  securityHeaders: (req: IncomingMessage, res: ServerResponse) => void
  /** Fastify's `frameworkErrors` option. */
  frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void
  /** Fastify's `clientErrorHandler` option. */
  clientError: (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket) => void
}

export function errorWriter (config: Pick<Config, 'ENVIRONMENT' | 'REQUEST_ID_HEADER'>): ErrorWriter {
  const values = securityHeaderValues(config.ENVIRONMENT)
  const requestIdHeader = config.REQUEST_ID_HEADER

  function securityHeaders (_req: IncomingMessage, res: ServerResponse): void {
    for (const [name, value] of Object.entries(values)) res.setHeader(name, value)
  }

  function send (request: FastifyRequest, reply: FastifyReply, statusCode: number, code: ErrorCode, message: string): void {
    securityHeaders(request.raw, reply.raw)
    reply.code(statusCode).header(requestIdHeader, request.id)
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(errorBody(statusCode, code, message, request.id)))
    // The log controller is not called on this path: the completion line is written here.
    request.log.info(completionLine(request, reply, null), 'request completed')
  }

  /**
   * Errors Fastify raises while routing (a malformed percent-encoding, a path parameter
   * longer than maxParamLength) skip every hook and the error handler. An over-long
   * path parameter is an id that cannot exist: a 404 like any other. Each counts
   * against the client's rate limit, as an unknown URL does.
   */
  async function answerFrameworkError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<void> {
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
    const limiter = limiterOf(request.server)
    try {
      await limiter?.call(request.server, request, reply)
    } catch (refused) {
      if (!(refused instanceof ApiError)) throw refused
      // The limiter has set retry-after and the x-ratelimit headers on the reply.
      request.log.info({ code: refused.code, statusCode: refused.statusCode, reason: error.code }, 'request refused')
      return send(request, reply, refused.statusCode, refused.code, refused.message)
    }
    request.log.info({ code, statusCode, reason: error.code }, 'request refused')
    send(request, reply, statusCode, code, message)
  }

  function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    answerFrameworkError(error, request, reply).catch((err: unknown) => {
      request.log.error({ err }, 'request failed')
      if (!reply.sent) send(request, reply, 500, 'INTERNAL_ERROR', 'An internal error occurred')
    })
  }

  /**
   * Requests Node's HTTP parser refuses (bad header characters, headers over 16 KiB,
   * requests too slow to arrive) never become Fastify requests; they still get the
   * error shape, a fresh request id and the security headers instead of Node's bare answer.
   */
  function clientError (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return
    const statusCode = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
    const id = randomUUID()
    const body = JSON.stringify(errorBody(statusCode, codeForStatus(statusCode), 'The request could not be read', id))
    this.log.debug({ reqId: id, code: error.code, statusCode }, 'client error')
    if (socket.writable) {
      const headers = {
        ...values,
        'content-type': 'application/json; charset=utf-8',
        'content-length': String(Buffer.byteLength(body)),
        [requestIdHeader]: id,
        date: new Date().toUTCString(),
        connection: 'close'
      }
      const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
      socket.write(`HTTP/1.1 ${statusCode} ${reasonPhrase(statusCode)}\r\n${head}\r\n${body}`)
    }
    socket.destroy(error)
  }

  return { securityHeaders, frameworkErrors, clientError }
}
