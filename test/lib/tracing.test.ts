import t from 'tap'
import { ERROR_LOG_INTERVAL_MS, serverSpanName, startTracing, throttledErrorLine, tracingActive, tracingRequested } from '../../lib/tracing.js'

// When tracing is on (SPEC §6.4): an OTLP endpoint set, and OTEL_SDK_DISABLED not true.
// The spans themselves are tested against a real receiver in test/e2e/tracing.test.ts.

t.test('tracing is requested only by an OTLP endpoint, and OTEL_SDK_DISABLED=true turns it off', async (t) => {
  t.equal(tracingRequested({}), false, 'nothing set')
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), false, 'an empty endpoint')
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), false, 'a blank endpoint')
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true)
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true, 'the traces-only endpoint')
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }), false)
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }), false, 'case-insensitive')
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'false' }), true)
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: '1' }), true, 'only "true" disables, as the specification says')
})

t.test('without an endpoint startTracing starts nothing', async (t) => {
  t.equal(await startTracing({}), false)
  t.equal(tracingActive(), false)
})

t.test('the server span is named by method and route pattern, by the method alone without a route', async (t) => {
  t.equal(serverSpanName('GET', '/notes/:id'), 'GET /notes/:id')
  t.equal(serverSpanName('POST', undefined), 'POST')
})

t.test('export errors are logged at most once per interval, with the count of those left out', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  let now = 1_000_000
  const error = throttledErrorLine((l) => lines.push(JSON.parse(l)), () => now)
  error('connect ECONNREFUSED')
  error('connect ECONNREFUSED')
  now += ERROR_LOG_INTERVAL_MS - 1
  error('connect ECONNREFUSED')
  t.equal(lines.length, 1, 'one line within the interval')
  now += 1
  error('timeout')
  t.equal(lines.length, 2)
  t.match(lines[0], { level: 50, name: 'tracing', msg: 'tracing: connect ECONNREFUSED', suppressed: 0 })
  t.match(lines[1], { msg: 'tracing: timeout', suppressed: 2 })
})
