import fp from 'fastify-plugin'
import type {} from '@fastify/otel'
import type pino from 'pino'
import { stopTracing, tracingActive } from '../../lib/tracing.js'

/**
 * With tracing on (docs/operations.md, "Tracing"): every log line of a request
 * carries the trace_id and span_id of its server span, bound to the request's
 * logger as soon as the span exists, so the completion line has them too; and the
 * spans still buffered are exported on close (the batch processor would otherwise
 * lose the last seconds before the exit). With tracing off nothing is added.
 */
export default fp(async function tracingPlugin (fastify) {
  if (!tracingActive()) return
  fastify.addHook('onRequest', function traceIdsOnLogLines (request, _reply, done) {
    const otel = request.opentelemetry()
    if (otel.instrumented && otel.span !== null) {
      const { traceId, spanId } = otel.span.spanContext()
      // The request's own child logger (pino's, as server-options/logging.ts makes it),
      // shared with reply.log: its bindings change, not which logger is used.
      ;(request.log as pino.Logger).setBindings({ trace_id: traceId, span_id: spanId })
    }
    done()
  })
  fastify.addHook('onClose', async function flushTraces () { await stopTracing() })
}, { name: 'tracing' })
