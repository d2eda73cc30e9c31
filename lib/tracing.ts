import type { NodeSDK } from '@opentelemetry/sdk-node'
import type { Span } from '@opentelemetry/api'
import type { FastifyRequest } from 'fastify'

// OpenTelemetry tracing (docs/operations.md, "Tracing"; docs/contract.md, "Trace context"). Nothing here runs
// at import: telemetry.ts calls startTracing() before the rest of the service loads,
// and only then are the SDK and the instrumentations themselves imported, so a
// service without an exporter endpoint loads none of them and pays nothing.

/** What is read here; everything else (protocol, sampler, service name, batching) is read by the SDK itself. */
export type TracingEnv = Partial<Record<'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_SDK_DISABLED' | 'OTEL_SERVICE_NAME', string>>

/** The package name: the service name when OTEL_SERVICE_NAME is unset (docs/contract.md, "Trace context"). */
export const DEFAULT_SERVICE_NAME = 'secure-fastify-service'

/** An export failure (collector down or slow) is logged at most this often. */
export const ERROR_LOG_INTERVAL_MS = 5000

/** Tracing is on when an OTLP endpoint is configured and the SDK is not disabled by OTEL_SDK_DISABLED=true. */
export function tracingRequested (env: TracingEnv): boolean {
  const endpoint = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT)
  if (endpoint === undefined) return false
  // The specification's boolean: "true" in any case turns the SDK off, anything else leaves it on.
  return env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true'
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

/** The server span's name: `METHOD /route/pattern`, or the method alone when no route matched (404). */
export function serverSpanName (method: string, route: string | undefined): string {
  return route === undefined ? method : `${method} ${route}`
}

/**
 * Names the server span by route pattern and keeps the query string out of
 * `url.path` (@fastify/otel records the whole request URL there; a query may carry
 * a token). Headers are never recorded by @fastify/otel.
 */
export function describeServerSpan (span: Span, request: FastifyRequest): void {
  span.updateName(serverSpanName(request.method, request.routeOptions.url))
  const path = request.url.split('?')[0]
  span.setAttribute('url.path', path)
}

/**
 * One JSON line on stderr for the SDK's own errors (an export that failed), at most
 * once per ERROR_LOG_INTERVAL_MS with a count of those suppressed: a collector that
 * is down must not flood the logs (docs/contract.md, "Trace context").
 */
export function throttledErrorLine (write: (line: string) => void, now: () => number = Date.now) {
  let last = -Infinity
  let suppressed = 0
  return function error (message: string): void {
    const time = now()
    if (time - last < ERROR_LOG_INTERVAL_MS) {
      suppressed++
      return
    }
    last = time
    const line = { level: 50, time, name: 'tracing', msg: `tracing: ${message}`, suppressed }
    suppressed = 0
    write(JSON.stringify(line) + '\n')
  }
}

let sdk: NodeSDK | undefined

/**
 * Starts the SDK when tracing is requested; returns whether it did. Must run before
 * ioredis, pg and fastify are loaded: the ESM loader hook registered here sees only
 * modules imported after it (ioredis is imported as an ES module, which the
 * require hook never sees), and @fastify/otel attaches to each Fastify instance as
 * it is created.
 */
export async function startTracing (env: TracingEnv): Promise<boolean> {
  if (sdk !== undefined) return true
  if (!tracingRequested(env)) return false

  const { register } = await import('node:module')
  // Only ioredis is intercepted as an ES module; pg is loaded by @fastify/postgres
  // with require(), which the instrumentation hooks without a loader.
  register('import-in-the-middle/hook.mjs', import.meta.url, { data: { include: ['ioredis'] } })

  const [{ NodeSDK }, { diag, DiagLogLevel }, { FastifyOtelInstrumentation }, { PgInstrumentation }, { IORedisInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/api'),
    import('@fastify/otel'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-ioredis')
  ])

  // The SDK reports failed exports through diag; without a logger they vanish.
  const error = throttledErrorLine((line) => process.stderr.write(line))
  diag.setLogger({
    error: (message: string) => error(message),
    warn: () => {},
    info: () => {},
    debug: () => {},
    verbose: () => {}
  }, DiagLogLevel.ERROR)

  sdk = new NodeSDK({
    // OTEL_SERVICE_NAME, when set, is the SDK's to read (its environment resource detector).
    ...(nonEmpty(env.OTEL_SERVICE_NAME) === undefined && { serviceName: DEFAULT_SERVICE_NAME }),
    // Traces only: metrics are prom-client's /metrics, logs are the JSON lines on stdout.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new FastifyOtelInstrumentation({
        registerOnInitialization: true,
        requestHook: describeServerSpan,
        // One span per request: a span per hook and handler multiplied the cost of
        // tracing (BENCHMARKS.md, "Tracing"); queries and commands still nest under it.
        instrumentHooks: false,
        instrumentHandler: false,
        // No exception events: a 4xx (a refused token, a bad body) is not a defect to
        // track, and an error's message and stack stay in the logs, where they are redacted.
        recordExceptions: false
      }),
      new PgInstrumentation({
        // Pool start-up, migrations and LISTEN outside a request are not traced.
        requireParentSpan: true,
        // A span per query, not one more per pool checkout.
        ignoreConnectSpans: true,
        // Statement text with its placeholders only, never the values bound to them.
        enhancedDatabaseReporting: false
      }),
      new IORedisInstrumentation({
        requireParentSpan: true,
        // The command name only: keys hold emails and client addresses, values hold tokens' ids.
        dbStatementSerializer: (command: string) => command
      })
    ]
  })
  sdk.start()
  return true
}

/** Whether startTracing() started the SDK in this process. */
export function tracingActive (): boolean {
  return sdk !== undefined
}

/** Exports the spans still buffered and stops tracing (at shutdown); nothing when tracing is off. */
export async function stopTracing (): Promise<void> {
  const running = sdk
  sdk = undefined
  await running?.shutdown()
}
