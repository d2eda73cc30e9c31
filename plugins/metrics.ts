import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client'
import { requestIdGenerator } from '../server-options.js'

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
type LabelName = typeof LABEL_NAMES[number]
type Labels = Record<LabelName, string | number>
interface Series { labels: Labels, buckets: Float64Array, sum: number, count: number }

/**
 * http_request_duration_seconds, with each series a plain array of counts found by
 * a string key. prom-client's `observe`, even on a labelled child, validates and
 * hashes the labels on every call: that was the largest single cost of a bare
 * route (BENCHMARKS.md). prom-client still registers this histogram and writes it
 * out; only the counting is ours, and the export is its format: cumulative
 * `_bucket` series ending at `+Inf`, then `_sum` and `_count`.
 */
export class RequestDurationHistogram extends Histogram<LabelName> {
  readonly #series = new Map<string, Series>()

  constructor (registry: Registry) {
    super({ name: DURATION, help: DURATION_HELP, labelNames: LABEL_NAMES, buckets: DURATION_BUCKETS, registers: [registry] })
  }

  /** One request's duration, in seconds. */
  record (method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`
    let series = this.#series.get(key)
    if (series === undefined) {
      series = { labels: { method, route, status_code: status }, buckets: new Float64Array(DURATION_BUCKETS.length), sum: 0, count: 0 }
      this.#series.set(key, series)
    }
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= DURATION_BUCKETS[i]!) {
        series.buckets[i]!++
        break
      }
    }
    series.sum += seconds
    series.count++
  }

  override reset (): void {
    // Histogram's constructor calls reset() before this class's fields exist.
    if (#series in this) this.#series.clear()
    super.reset()
  }

  override async get (): Promise<MetricObjectWithValues<MetricValueWithName<LabelName>>> {
    const values: MetricValueWithName<LabelName | 'le'>[] = []
    for (const { labels, buckets, sum, count } of this.#series.values()) {
      let cumulative = 0
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        cumulative += buckets[i]!
        values.push({ labels: { le: DURATION_BUCKETS[i]!, ...labels }, value: cumulative, metricName: `${DURATION}_bucket` })
      }
      values.push(
        { labels: { le: '+Inf', ...labels }, value: count, metricName: `${DURATION}_bucket` },
        { labels: { ...labels }, value: sum, metricName: `${DURATION}_sum` },
        { labels: { ...labels }, value: count, metricName: `${DURATION}_count` }
      )
    }
    return { name: DURATION, help: DURATION_HELP, type: 'histogram', aggregator: 'sum', values } as unknown as MetricObjectWithValues<MetricValueWithName<LabelName>>
  }

  // The registry prefers this to get() when a metric has it, as Histogram does.
  getForPromString (): ReturnType<RequestDurationHistogram['get']> {
    return this.get()
  }
}

function buildRegistry (fastify: FastifyInstance): { registry: Registry, duration: RequestDurationHistogram } {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const duration = new RequestDurationHistogram(registry)
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
 * Prometheus metrics (SPEC §4) when METRICS_ENABLED: on the main port at /metrics,
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
      duration.record(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
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
    // Like every response of the service (SPEC §2), these carry a request id.
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
}, { name: 'metrics', dependencies: ['env'] })
