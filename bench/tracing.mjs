// Benchmarks of tracing, for bench/run.mjs (its `--routes` names me-traced and
// notes-traced; `--tracing` runs only these and the untraced me and notes):
//
// - GET /auth/me and GET /notes?limit=20 on a service started with tracing on
//   (OTEL_EXPORTER_OTLP_ENDPOINT set, always sampling, the default http/protobuf
//   export), measured in alternating rounds against the service of the same run
//   with tracing off (its "baseline" row): the ratio is on / off, target 0.85.
// - The spans go to a local sink that accepts every export and discards it, so
//   that what is measured is the service's cost, not a collector's.
import { createServer } from 'node:http'
import { join } from 'node:path'
import { bearer, login } from './identity.mjs'

export const TRACING_ROUTES = ['me-traced', 'notes-traced']

/** An OTLP/HTTP endpoint that answers 200 to everything and keeps nothing; resolves with its URL and counters. */
async function startSink (ctx) {
  const stats = { exports: 0, bytes: 0 }
  const server = createServer((req, res) => {
    req.on('data', (chunk) => { stats.bytes += chunk.length })
    req.on('end', () => {
      stats.exports++
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end()
    })
  })
  const port = await ctx.freePort()
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${port}`, stats, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }) }
}

/**
 * Starts the traced service the selected routes need (same database and user as
 * the untraced one) and returns the routes, each with the servers it compares.
 * `ctx`: { root, selected, env, email, password, off: { port, pid, accessToken }, startServer, waitReady, freePort, log, cleanups }.
 */
export async function tracingRoutes (ctx) {
  const wanted = TRACING_ROUTES.filter((id) => ctx.selected.has(id))
  if (wanted.length === 0) return []
  const sink = await startSink(ctx)
  ctx.cleanups.push(async () => {
    ctx.log(`tracing sink: ${sink.stats.exports} exports, ${Math.round(sink.stats.bytes / 1024)} KiB received`)
    await sink.close()
  })
  const port = await ctx.freePort()
  const child = ctx.startServer('service-traced', [join(ctx.root, 'dist', 'server.js')], {
    ...ctx.env,
    PORT: String(port),
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_TRACES_SAMPLER: 'always_on'
  })
  await ctx.waitReady(port, '/health/ready', child)
  const accessToken = await login(port, ctx)
  const off = { name: 'baseline', port: ctx.off.port, pid: ctx.off.pid }
  const on = { name: 'service', port, pid: child.pid }
  const headersByPort = { [off.port]: bearer(ctx.off.accessToken), [on.port]: bearer(accessToken) }
  const routes = []
  if (wanted.includes('me-traced')) {
    routes.push({ id: 'me-traced', name: 'GET /auth/me, tracing on (baseline: tracing off)', target: 0.85, method: 'GET', path: '/auth/me', headersByPort, servers: [off, on] })
  }
  if (wanted.includes('notes-traced')) {
    routes.push({ id: 'notes-traced', name: 'GET /notes?limit=20, tracing on (baseline: tracing off)', target: 0.85, method: 'GET', path: '/notes?limit=20', headersByPort, servers: [off, on] })
  }
  return routes
}
