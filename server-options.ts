import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions, type FastifyRequest } from 'fastify'
import { AjvCompiler } from '@fastify/ajv-compiler'
import pino from 'pino'
import type { Config } from './lib/config.js'
import { codeForStatus, errorBody, reasonPhrase, type ErrorCode } from './lib/errors.js'
import { RequestLogger, requestLogger } from './lib/request-logger.js'
import { trustProxyOption } from './lib/trust-proxy.js'

// The one source of Fastify's server options, used by server.ts, by
// `fastify start --options dist/app.js` and by the test helper, so that tests
// validate, log and identify requests exactly as production does.

const REQUEST_ID = /^[A-Za-z0-9\-_.:]{1,128}$/

/** Uses the caller's request id when it is safe to log and echo, a new UUID v4 otherwise. */
export function requestIdGenerator (headerName: string): (req: IncomingMessage) => string {
  const header = headerName.toLowerCase()
  // Fastify uses requestIdHeader values verbatim, so we validate here instead.
  return function genReqId (req) {
    const value = req.headers[header]
    return typeof value === 'string' && REQUEST_ID.test(value) ? value : randomUUID()
  }
}

/**
 * Request bodies are validated without coercion ({"title": 123} is a 400, not "123")
 * and never stripped (an unknown field is a 400, not silently dropped). Query strings
 * and path parameters arrive as text, so they are coerced as usual.
 */
function buildValidator () {
  const base = { removeAdditional: false, useDefaults: true, allErrors: false } as const
  const factory = AjvCompiler()
  return function buildValidatorFromParts (externalSchemas: unknown, ajvOptions: { customOptions?: object, plugins?: unknown[] }) {
    const opts = ajvOptions ?? {}
    const strict = factory(externalSchemas as never, { ...opts, customOptions: { ...opts.customOptions, ...base, coerceTypes: false } } as never)
    const coercing = factory(externalSchemas as never, { ...opts, customOptions: { ...opts.customOptions, ...base, coerceTypes: 'array' } } as never)
    return function compile (route: { httpPart?: string }) {
      return route.httpPart === 'body' ? strict(route as never) : coercing(route as never)
    }
  }
}

// Objects that code tends to log whole, at the top level or under these keys.
const REDACT_PARENTS = ['', 'req.', 'request.', 'res.', 'reply.', 'response.', 'err.', 'error.', 'data.', 'context.']
const SECRET_KEYS = ['password', 'client_secret', 'access_token', 'refresh_token', 'token', 'secret']

/**
 * Explicit paths only: pino's wildcard paths (`*.password`) cost about 9 µs on every
 * log line, more than a whole request to a bare route, where a hundred plain paths
 * cost half a microsecond. So the shapes we log are listed rather than matched.
 */
function redactPaths (config: Config): string[] {
  const headers = new Set(['authorization', 'cookie', 'set-cookie', 'x-csrf-token', config.JWT_HEADER_NAME.toLowerCase()])
  const paths: string[] = []
  for (const parent of REDACT_PARENTS) {
    // Wherever headers get logged: `req.headers` (serializers), a handler's
    // `log.info({ headers })`, or `log.info({ request: { headers } })`.
    for (const h of headers) paths.push(`${parent}headers["${h}"]`)
    for (const key of SECRET_KEYS) paths.push(`${parent}${key}`, `${parent}body.${key}`)
  }
  return paths
}

/** The completion line; with `reqId` when it is written through a logger without that binding. */
function completionLine (request: FastifyRequest, reply: FastifyReply, route: string | null, reqId?: string) {
  return {
    reqId,
    method: request.method,
    route,
    url: request.url.split('?')[0],
    statusCode: reply.statusCode,
    responseTime: Math.round(reply.elapsedTime * 100) / 100,
    remoteAddress: request.ip
  }
}

/**
 * Completion lines are written together once per turn of the event loop (in its
 * check phase, before it waits for more I/O) rather than each as its response
 * finishes: formatted in one batch, away from the HTTP write path, a line costs
 * roughly half as much time (BENCHMARKS.md). They are written at exit too; a process
 * killed outright (SIGKILL, the OOM killer) loses at most the lines of the turn it
 * was in, where pino's default asynchronous stream loses whatever it still holds.
 * One queue per process, whichever number of apps it builds.
 */
const pendingLines: Array<FastifyBaseLogger | object> = []
let flushScheduled = false

function writeCompletionLines (): void {
  flushScheduled = false
  const lines = pendingLines.splice(0)
  for (let i = 0; i < lines.length; i += 2) {
    (lines[i] as FastifyBaseLogger).info(lines[i + 1], 'request completed')
  }
}
process.on('exit', writeCompletionLines)

function queueCompletionLine (log: FastifyBaseLogger, line: object): void {
  pendingLines.push(log, line)
  if (!flushScheduled) {
    flushScheduled = true
    setImmediate(writeCompletionLines)
  }
}

/**
 * One line per request, at completion, with what an operator filters on (SPEC §1
 * LOG_LEVEL): reqId, method, route pattern, status, time. Fastify's default writes
 * two lines and neither names the route. A request that failed while its response
 * was being written is logged at once, as an error.
 */
class RequestLogController extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url ?? null
    if (error) request.log.error({ ...completionLine(request, reply, route), err: error }, 'request errored')
    else if (request.log instanceof RequestLogger) queueCompletionLine(request.log.parent, completionLine(request, reply, route, request.id))
    else queueCompletionLine(request.log, completionLine(request, reply, route))
  }
}

// Responses written outside the plugin pipeline get the headers no hook can add there.
const BARE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'"
}

/**
 * Errors Fastify raises while routing (a malformed percent-encoding, a path
 * parameter longer than maxParamLength) skip every hook and the error handler:
 * they are answered here, in the one error shape with the request id (SPEC §2).
 * An over-long path parameter is an id that cannot exist: a 404 like any other.
 */
function frameworkErrorHandler (requestIdHeader: string) {
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
 * and a fresh request id instead of Fastify's bare body.
 */
function clientErrorHandler (requestIdHeader: string) {
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

/**
 * Log lines are written to stdout synchronously, as Node writes to a pipe on Linux.
 * pino's default writes asynchronously from libuv's thread pool and loses the lines
 * it still holds when the process dies: the last ones, which are the ones an
 * investigation needs. (On speed the two measured within noise, BENCHMARKS.md.)
 * One destination per process, whichever number of apps it builds.
 */
let stdout: pino.DestinationStream | undefined
function stdoutDestination (): pino.DestinationStream {
  stdout ??= pino.destination({ dest: 1, sync: true })
  return stdout
}

const REQUEST_TIMEOUT_MS = 30_000
const KEEP_ALIVE_TIMEOUT_MS = 72_000

/**
 * Whether a Fastify instance was built with these options (its initial config
 * carries our timeouts): `fastify start` without `--options` builds one without them.
 */
export function hasServerOptions (initialConfig: { requestTimeout?: number, keepAliveTimeout?: number }): boolean {
  return initialConfig.requestTimeout === REQUEST_TIMEOUT_MS && initialConfig.keepAliveTimeout === KEEP_ALIVE_TIMEOUT_MS
}

export function buildServerOptions (config: Config): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      stream: stdoutDestination(),
      redact: { paths: redactPaths(config), censor: '[redacted]' },
      serializers: {
        // Only what an operator needs; headers (cookies, tokens) and query strings stay out.
        req (req: FastifyRequest) {
          return { method: req.method, url: req.url.split('?')[0], remoteAddress: req.ip }
        }
      }
    },
    logController: new RequestLogController({ requestIdLogLabel: 'reqId' }),
    childLoggerFactory: requestLogger,
    requestIdHeader: false,
    genReqId: requestIdGenerator(config.REQUEST_ID_HEADER),
    // A hop count or an address/CIDR list: never `true`, which would let any client pick its own address.
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    bodyLimit: config.BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // A slow client cannot hold a request open forever (Fastify's default is no limit).
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionTimeout: 60_000,
    // Above the idle timeout of common ingresses (60 s) so they, not we, close idle sockets.
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Idle keep-alive sockets close at once on shutdown; in-flight requests finish.
    forceCloseConnections: 'idle',
    // plugins/lifecycle.ts answers requests that arrive while closing, in the error
    // shape and with the request id; Fastify's own 503 has neither.
    return503OnClosing: false,
    frameworkErrors: frameworkErrorHandler(config.REQUEST_ID_HEADER),
    clientErrorHandler: clientErrorHandler(config.REQUEST_ID_HEADER),
    pluginTimeout: 60_000,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    schemaController: { compilersFactory: { buildValidator: buildValidator() as never } }
  }
}
