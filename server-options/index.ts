import { createServer } from 'node:http'
import type { FastifyServerOptions } from 'fastify'
import type pino from 'pino'
import type { Config } from '../config/schema.js'
import { requestIdGenerator } from '../lib/request-id.js'
import { errorWriter } from './framework-errors.js'
import { loggerOptions, RequestLogController } from './logging.js'
import { trustProxyOption } from './trust-proxy.js'
import { buildValidator } from './validation.js'

// The one source of Fastify's server options, used by serve.ts, by
// `fastify start --options dist/app.js` and by the test helper, so that tests
// validate, log and identify requests exactly as production does.

/**
 * How long a client may take (docs/edge.md, "Slow clients"). Node checks the
 * request and header deadlines every connectionsCheckingInterval, so a request whose
 * headers and body have not all arrived is cut off (408) at most
 * requestTimeout + connectionsCheckingInterval after its first byte, however slowly
 * the bytes drip in; connectionTimeout is only the idle limit, which each byte resets.
 */
export interface ServerTimeouts {
  requestTimeout: number
  headersTimeout: number
  connectionsCheckingInterval: number
  /** Idle socket limit. */
  connectionTimeout: number
  keepAliveTimeout: number
}

export const SERVER_TIMEOUTS: Readonly<ServerTimeouts> = {
  requestTimeout: 30_000,
  headersTimeout: 15_000,
  connectionsCheckingInterval: 2_000,
  connectionTimeout: 60_000,
  // Above the idle timeout of common ingresses (60 s) so they, not we, close idle sockets.
  keepAliveTimeout: 72_000
}

export interface ServerOptionsOverrides {
  /** Where log lines go instead of stdout (the test helper collects them). */
  logStream?: pino.DestinationStream
  /** Shorter timeouts, for tests that watch a slow client being cut off. */
  timeouts?: Partial<ServerTimeouts>
}

/**
 * The HTTP server, made here rather than by Fastify (its documented serverFactory
 * option) because two of its settings have no Fastify option: the deadline check
 * interval, and maxHeadersCount. Node's header count limit (2,000, applied in blocks
 * of 32, so a little over 1,000 fields in practice) silently drops the fields past it;
 * at 0 every field is read, and the header block is bounded by its size alone (16 KiB,
 * answered 431). Fastify then binds only the first address of a host name such as
 * `localhost`; HOST is an address (127.0.0.1, 0.0.0.0) everywhere we configure it.
 */
function serverFactory (timeouts: ServerTimeouts): NonNullable<FastifyServerOptions['serverFactory']> {
  return function createHttpServer (handler) {
    const server = createServer({
      requestTimeout: timeouts.requestTimeout,
      headersTimeout: Math.min(timeouts.headersTimeout, timeouts.requestTimeout),
      connectionsCheckingInterval: timeouts.connectionsCheckingInterval
    }, handler)
    server.keepAliveTimeout = timeouts.keepAliveTimeout
    server.maxHeadersCount = 0
    server.setTimeout(timeouts.connectionTimeout)
    return server
  }
}

export function buildServerOptions (config: Config, overrides: ServerOptionsOverrides = {}): FastifyServerOptions {
  const errors = errorWriter(config)
  return {
    serverFactory: serverFactory({ ...SERVER_TIMEOUTS, ...overrides.timeouts }),
    logger: loggerOptions(config, overrides.logStream),
    logController: new RequestLogController({ requestIdLogLabel: 'reqId' }),
    requestIdHeader: false,
    genReqId: requestIdGenerator(config.REQUEST_ID_HEADER),
    // A hop count or an address/CIDR list: never `true`, which would let any client pick its own address.
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    bodyLimit: config.BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Idle keep-alive sockets close at once on shutdown; in-flight requests finish.
    forceCloseConnections: 'idle',
    // plugins/app/lifecycle.ts answers requests that arrive while closing, in the
    // error shape and with the request id; Fastify's own 503 has neither.
    return503OnClosing: false,
    frameworkErrors: errors.frameworkErrors,
    clientErrorHandler: errors.clientError,
    pluginTimeout: 60_000,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    schemaController: { compilersFactory: { buildValidator: buildValidator() } }
  }
}
