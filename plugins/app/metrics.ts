import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { requestIdGenerator } from '../../lib/request-id.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's metrics, when METRICS_ENABLED (a registry per app, so apps in one process never collide). */
    metrics?: Metrics
  }
  interface FastifyContextConfig {
    /** false: requests to this route are not measured (the scrape endpoint itself). */
    metrics?: boolean
  }
}

export interface Metrics {
  registry: Registry
  /** The separate metrics listener when METRICS_PORT is set (its address is known once ready). */
  server: Server | undefined
}

// Every unknown URL shares this route label, so probing cannot grow the series without bound.
export const UNMATCHED_ROUTE = 'unmatched'

// Request latencies of a JSON API: from 5 ms to the 30 s request timeout.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const DURATION = 'http_request_duration_seconds'
const DURATION_HELP = 'Time from request to response, by route pattern'

const LABEL_NAMES = ['method', 'route', 'status_code'] as const
const NOT_COUNTERS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

function buildRegistry (fastify: FastifyInstance): { registry: Registry, duration: Histogram<typeof LABEL_NAMES[number]> } {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // prom-client names three gauges *_total, which Prometheus reserves for counters
  // (`promtool check metrics` fails on them). Their per-type gauges stay
  // (nodejs_active_handles, nodejs_active_requests, nodejs_active_resources): sum them.
  for (const name of NOT_COUNTERS) registry.removeSingleMetric(name)

  const duration = new Histogram({ name: DURATION, help: DURATION_HELP, labelNames: LABEL_NAMES, buckets: DURATION_BUCKETS, registers: [registry] })
  // The histogram already counts every request: the counter is derived from it at
  // scrape time, so a request pays for one observation, not two.
  // eslint-disable-next-line no-new
  new Counter({
    name: 'http_requests_total',
    help: 'Requests answered, by route pattern',
    labelNames: LABEL_NAMES,
    registers: [registry],
    async collect () {
      const { values } = await duration.get()
      this.reset()
      for (const sample of values) {
        if (sample.metricName === 'http_request_duration_seconds_count') this.inc(sample.labels, sample.value)
      }
    }
  })

  const pool = () => fastify.hasDecorator('pg') ? fastify.pg.pool : undefined
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'db_pool_connections',
    help: 'PostgreSQL pool connections: total open, idle, and requests waiting for one',
    labelNames: ['state'],
    registers: [registry],
    collect () {
      const p = pool()
      this.set({ state: 'total' }, p?.totalCount ?? 0)
      this.set({ state: 'idle' }, p?.idleCount ?? 0)
      this.set({ state: 'waiting' }, p?.waitingCount ?? 0)
    }
  })

  // Read at scrape time from the plugins that own them; this plugin does not depend on
  // them, so an app assembled without one still serves its other metrics.
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'auth_revoked_sessions',
    help: 'Revoked sessions and clients held in this replica\'s revocation cache',
    registers: [registry],
    collect () { this.set(fastify.hasDecorator('revocation') ? fastify.revocation.size : 0) }
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'rate_limit_rejections_total',
    help: 'Requests refused with 429 by the rate limiter since start',
    registers: [registry],
    collect () {
      this.reset()
      this.inc(fastify.hasDecorator('rateLimitStats') ? fastify.rateLimitStats.rejections : 0)
    }
  })

  return { registry, duration }
}

/**
 * Prometheus metrics (docs/operations.md, "Metrics") when METRICS_ENABLED: on the main port at /metrics,
 * or, when METRICS_PORT is set, only on a separate listener on that port, so that
 * an ingress for the main port can never expose them.
 */
export default fp(async function metricsPlugin (fastify) {
  const config = fastify.config
  if (!config.METRICS_ENABLED) return

  const { registry, duration } = buildRegistry(fastify)
  const metrics: Metrics = { registry, server: undefined }
  fastify.decorate('metrics', metrics)

  // One hook and one observation per request; the labels are values Fastify already
  // holds, and the set of series keys is bounded (route patterns).
  fastify.addHook('onResponse', function observeRequest (request, reply, done) {
    const options = request.routeOptions
    if (options.config.metrics !== false) {
      const route = request.is404 ? UNMATCHED_ROUTE : (options.url ?? UNMATCHED_ROUTE)
      duration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
    }
    done()
  })

  if (config.METRICS_PORT === undefined) {
    fastify.get('/metrics', {
      // Scrapers poll often and must never be refused; the scrape itself is not measured.
      config: { rateLimit: false, metrics: false },
      schema: { hide: true }
    }, async function scrape (_request, reply) {
      const text = await registry.metrics()
      return reply.type(registry.contentType).send(text)
    })
    return
  }

  const requestId = requestIdGenerator(config.REQUEST_ID_HEADER)
  const server = createServer(function serveMetrics (req, res) {
    // Like every response of the service, these carry a request id.
    res.setHeader(config.REQUEST_ID_HEADER, requestId(req))
    const path = (req.url ?? '').split('?')[0]
    if ((req.method === 'GET' || req.method === 'HEAD') && path === '/metrics') {
      registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
        res.end(req.method === 'HEAD' ? undefined : text)
      }, (err: unknown) => {
        fastify.log.error({ err }, 'metrics collection failed')
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n')
      })
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end('not found\n')
  })
  server.requestTimeout = 10_000
  server.headersTimeout = 10_000
  metrics.server = server

  // Started when the app is ready rather than on listen: a port already in use then
  // aborts the start (onListen errors are only logged), so the operator finds out.
  fastify.addHook('onReady', async function listenForScrapes () {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(config.METRICS_PORT, config.HOST, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address() as AddressInfo
    fastify.log.info({ address: address.address, port: address.port }, 'metrics listening')
  })

  fastify.addHook('onClose', async function closeMetricsListener () {
    if (!server.listening) return
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      // Prometheus keeps its connection alive between scrapes: do not wait for it.
      server.closeIdleConnections()
    })
  })
}, { name: 'metrics', dependencies: ['config'] })
