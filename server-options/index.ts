import type { FastifyServerOptions } from 'fastify'
import type pino from 'pino'
import type { Config } from '../config/schema.js'
import { requestIdGenerator } from '../lib/request-id.js'
import { clientErrorHandler, frameworkErrorHandler } from './framework-errors.js'
import { loggerOptions, RequestLogController } from './logging.js'
import { trustProxyOption } from './trust-proxy.js'
import { buildValidator } from './validation.js'

// The one source of Fastify's server options, used by serve.ts, by
// `fastify start --options dist/app.js` and by the test helper, so that tests
// validate, log and identify requests exactly as production does.

export interface ServerOptionsOverrides {
  /** Where log lines go instead of stdout (the test helper collects them). */
  logStream?: pino.DestinationStream
}

export function buildServerOptions (config: Config, overrides: ServerOptionsOverrides = {}): FastifyServerOptions {
  return {
    logger: loggerOptions(config, overrides.logStream),
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
    // plugins/app/lifecycle.ts answers requests that arrive while closing, in the
    // error shape and with the request id; Fastify's own 503 has neither.
    return503OnClosing: false,
    frameworkErrors: frameworkErrorHandler(config.REQUEST_ID_HEADER),
    clientErrorHandler: clientErrorHandler(config.REQUEST_ID_HEADER),
    pluginTimeout: 60_000,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    schemaController: { compilersFactory: { buildValidator: buildValidator() } }
  }
}
