import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { LogController, type FastifyReply, type FastifyServerOptions, type FastifyRequest } from 'fastify'
import { AjvCompiler } from '@fastify/ajv-compiler'
import type { Config } from './lib/config.js'
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

function redactPaths (config: Config): string[] {
  const headers = new Set(['authorization', 'cookie', 'x-csrf-token', config.JWT_HEADER_NAME.toLowerCase()])
  const paths = [...headers].map((h) => `req.headers["${h}"]`)
  paths.push('res.headers["set-cookie"]')
  for (const key of ['password', 'client_secret', 'access_token', 'refresh_token', 'token', 'secret']) {
    paths.push(key, `*.${key}`, `body.${key}`, `req.body.${key}`)
  }
  return paths
}

/**
 * One line per request, at completion, with what an operator filters on (SPEC §1
 * LOG_LEVEL): reqId (from the child logger), method, route pattern, status, time.
 * Fastify's default writes two lines and neither names the route.
 */
class RequestLogController extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      route: request.routeOptions.url ?? null,
      url: request.url.split('?')[0],
      statusCode: reply.statusCode,
      responseTime: Math.round(reply.elapsedTime * 100) / 100,
      remoteAddress: request.ip
    }
    if (error) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request completed')
  }
}

export function buildServerOptions (config: Config): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: redactPaths(config), censor: '[redacted]' },
      serializers: {
        // Only what an operator needs; headers (cookies, tokens) and query strings stay out.
        req (req: FastifyRequest) {
          return { method: req.method, url: req.url.split('?')[0], remoteAddress: req.ip }
        }
      }
    },
    logController: new RequestLogController({ requestIdLogLabel: 'reqId' }),
    requestIdHeader: false,
    genReqId: requestIdGenerator(config.REQUEST_ID_HEADER),
    // A hop count or an address/CIDR list: never `true`, which would let any client pick its own address.
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    bodyLimit: config.BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // A slow client cannot hold a request open forever (Fastify's default is no limit).
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    // Above the idle timeout of common ingresses (60 s) so they, not we, close idle sockets.
    keepAliveTimeout: 72_000,
    // Idle keep-alive sockets close at once on shutdown; in-flight requests finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    pluginTimeout: 60_000,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    schemaController: { compilersFactory: { buildValidator: buildValidator() as never } }
  }
}
