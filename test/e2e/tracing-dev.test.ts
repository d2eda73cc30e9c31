import t from 'tap'
import { testDatabaseUrl } from '../helper.js'
import { freePort } from '../fixtures/deploy/process.js'
import { makeClone, runDev, status, waitFor } from '../fixtures/dev-clone.js'
import { startOtlpReceiver } from '../fixtures/otlp-receiver.js'

// `npm run dev` with an OTLP endpoint (docs/operations.md, "Tracing"): scripts/dev.mjs
// preloads dist/telemetry.js into the fastify-cli process it starts, so requests to
// the development server are traced, their queries included. From a fresh clone,
// which builds from scratch: slow on two shared cores.

t.setTimeout(240_000)

t.test('npm run dev traces requests and their queries when an OTLP endpoint is set', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const clone = makeClone(t, 0o755)
  const port = await freePort()
  const dev = runDev(t, clone, {
    PORT: String(port),
    // The test's database rather than an embedded one: the subject is tracing.
    DATABASE_URL: await testDatabaseUrl(),
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100'
  })
  await waitFor(dev, 'ready server', async () => await status(port) === 200)
  const spans = await receiver.waitForSpans((all) => all.some((s) => s.name === 'GET /health/ready' && s.kind === 2) &&
    all.some((s) => s.attributes['db.system.name'] === 'postgresql'))
  const request = spans.find((s) => s.name === 'GET /health/ready')!
  const query = spans.find((s) => s.traceId === request.traceId && s.attributes['db.system.name'] === 'postgresql')
  t.ok(query, 'the readiness query is in the request\'s trace')
  t.equal(query?.parentSpanId, request.spanId, 'as its child')
  t.ok(dev.lines().some((l) => l.includes(`"trace_id":"${request.traceId}"`)), 'the request\'s log line carries its trace id')
})
