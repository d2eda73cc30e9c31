import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import pino from 'pino'
import type { Config } from '../config/schema.js'

// Objects that code tends to log whole, at the top level or under these keys.
const REDACT_PARENTS = ['', 'req.', 'request.', 'res.', 'reply.', 'response.', 'err.', 'error.', 'data.', 'context.']
const SECRET_KEYS = ['password', 'client_secret', 'access_token', 'refresh_token', 'token', 'secret', 'client_assertion']

/**
 * The paths pino redacts: credentials wherever they appear (docs/contract.md, "Logs").
 * Explicit paths only: pino's wildcard paths cost several microseconds on every line
 * (BENCHMARKS.md), so the shapes we log are listed rather than matched.
 */
export function redactPaths (config: Pick<Config, 'JWT_HEADER_NAME'>): string[] {
  const headers = new Set(['authorization', 'cookie', 'set-cookie', 'x-csrf-token', config.JWT_HEADER_NAME.toLowerCase()])
  const paths: string[] = []
  for (const parent of REDACT_PARENTS) {
    // Wherever headers get logged: `req.headers`, `log.info({ headers })`, `log.info({ request: { headers } })`.
    for (const h of headers) paths.push(`${parent}headers["${h}"]`)
    for (const key of SECRET_KEYS) paths.push(`${parent}${key}`, `${parent}body.${key}`)
  }
  return paths
}

/** What one request's completion line holds: what an operator filters on. */
export function completionLine (request: FastifyRequest, reply: FastifyReply, route: string | null) {
  return {
    method: request.method,
    route,
    url: request.url.split('?')[0],
    statusCode: reply.statusCode,
    responseTime: Math.round(reply.elapsedTime * 100) / 100,
    remoteAddress: request.ip
  }
}

/**
 * One line per request, at completion, with reqId, method, route pattern, status and
 * time; Fastify's default writes two lines and neither names the route. A request
 * that failed while its response was being written is logged as an error.
 */
export class RequestLogController extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = completionLine(request, reply, request.routeOptions.url ?? null)
    if (error) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request completed')
  }
}

let stdout: pino.DestinationStream | undefined

/**
 * stdout written synchronously, as Node writes to a pipe on Linux: pino's default
 * asynchronous stream loses the lines it still holds when the process dies, and those
 * are the ones an investigation needs (docs/operations.md, "Logs"). Made on first
 * use, once per process, however many apps it builds.
 */
function stdoutDestination (): pino.DestinationStream {
  stdout ??= pino.destination({ dest: 1, sync: true })
  return stdout
}

/** The logger options; `stream` replaces stdout (the test helper collects lines). */
export function loggerOptions (config: Pick<Config, 'LOG_LEVEL' | 'JWT_HEADER_NAME'>, stream?: pino.DestinationStream): FastifyServerOptions['logger'] {
  return {
    level: config.LOG_LEVEL,
    stream: stream ?? stdoutDestination(),
    redact: { paths: redactPaths(config), censor: '[redacted]' },
    serializers: {
      // Only what an operator needs; headers (cookies, tokens) and query strings stay out.
      req (req: FastifyRequest) {
        return { method: req.method, url: req.url.split('?')[0], remoteAddress: req.ip }
      }
    }
  }
}
