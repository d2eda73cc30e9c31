import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build } from '../helper.js'

t.test('readiness is 200 with every check ok, and 503 shutting_down once shutdown begins', async (t) => {
  const app = await build(t)
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok', checks: { database: 'ok' } })
  app.lifecycle.beginShutdown()
  t.equal(app.lifecycle.closing, true)
  const closing = await app.inject({ url: '/health/ready' })
  t.equal(closing.statusCode, 503)
  t.same(closing.json(), { status: 'shutting_down' })
  t.equal(closing.headers['cache-control'], 'no-store')
  t.ok(closing.headers['x-request-id'])
  const live = await app.inject({ url: '/health/live' })
  t.equal(live.statusCode, 200, 'liveness is unaffected')
  t.equal(live.headers.connection, 'close', 'responses while closing end their connection')
})

t.test('a failing critical check makes readiness 503 unavailable; a failing optional one does not', async (t) => {
  let criticalFails = false
  const app = await build(t, {
    routes (app) {
      app.lifecycle.addReadinessCheck({ name: 'cache', critical: false, run: async () => { throw new Error('cache down') } })
      app.lifecycle.addReadinessCheck({ name: 'queue', critical: true, run: async () => { if (criticalFails) throw new Error('queue down') } })
    }
  })
  const ok = await app.inject({ url: '/health/ready' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { status: 'ok', checks: { database: 'ok', cache: 'error', queue: 'ok' } })
  criticalFails = true
  const down = await app.inject({ url: '/health/ready' })
  t.equal(down.statusCode, 503)
  t.same(down.json(), { status: 'unavailable', checks: { database: 'ok', cache: 'error', queue: 'error' } })
})

t.test('a check that hangs counts as failed after 1 s', async (t) => {
  const app = await build(t, {
    routes (app) {
      app.lifecycle.addReadinessCheck({ name: 'hangs', critical: true, run: () => new Promise(() => {}) })
    }
  })
  const started = Date.now()
  const res = await app.inject({ url: '/health/ready' })
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'unavailable', checks: { database: 'ok', hangs: 'error' } })
  t.ok(elapsed >= 900 && elapsed < 1800, `answered in ${elapsed} ms`)
})

t.test('requests reaching the app after close() began get SERVICE_UNAVAILABLE in the error shape', async (t) => {
  let release: () => void = () => {}
  const app = await build(t, {
    routes (app) {
      app.get('/test/hold', async function hold () {
        await new Promise<void>((resolve) => { release = resolve })
        return { held: true }
      })
      app.get('/test/other', async function other () { return { other: true } })
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  // A request racing close() (sent on a keep-alive connection as it closes) reaches
  // Fastify's router while closing; a second listener on the same router makes
  // that race deterministic.
  const side = createServer(app.routing)
  side.listen(0, '127.0.0.1')
  await once(side, 'listening')
  t.teardown(() => { side.closeAllConnections(); side.close() })
  const sidePort = (side.address() as AddressInfo).port

  const held = fetch(`http://127.0.0.1:${port}/test/hold`)
  await sleep(150)
  const closed = app.close()
  await sleep(100)

  const late = await fetch(`http://127.0.0.1:${sidePort}/test/other`, { headers: { 'x-request-id': 'late-1' } })
  t.equal(late.status, 503)
  t.same(await late.json(), { statusCode: 503, error: 'Service Unavailable', code: 'SERVICE_UNAVAILABLE', message: 'The service is shutting down; retry', requestId: 'late-1' })
  t.equal(late.headers.get('x-request-id'), 'late-1')
  t.equal(late.headers.get('retry-after'), '1')
  t.equal(late.headers.get('connection'), 'close')
  const ready = await fetch(`http://127.0.0.1:${sidePort}/health/ready`)
  t.equal(ready.status, 503)
  t.same(await ready.json(), { status: 'shutting_down' }, 'readiness answers for itself')

  release()
  const res = await held
  t.equal(res.status, 200, 'the in-flight request completes')
  t.equal(res.headers.get('connection'), 'close', 'and ends its connection')
  t.same(await res.json(), { held: true })
  await closed
})
