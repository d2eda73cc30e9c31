import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { LiveSchema, ReadySchema } from '../../schemas/health.js'
import { NoQuery } from '../../schemas/common.js'

// Probes for Kubernetes: liveness never looks at dependencies (a database outage
// must not restart every pod); readiness does, and turns 503 once shutdown begins.
const health: FastifyPluginAsyncTypebox = async function health (fastify) {
  fastify.get('/live', {
    config: { rateLimit: false },
    schema: { tags: ['health'], summary: 'Liveness probe', querystring: NoQuery, response: { 200: LiveSchema } }
  }, async function live () {
    return { status: 'ok' as const }
  })

  fastify.get('/ready', {
    config: { rateLimit: false },
    schema: { tags: ['health'], summary: 'Readiness probe', querystring: NoQuery, response: { 200: ReadySchema, 503: ReadySchema } }
  }, async function ready (_request, reply) {
    if (fastify.lifecycle.closing) return reply.code(503).send({ status: 'shutting_down' })
    const { ready, checks } = await fastify.lifecycle.readiness()
    if (fastify.lifecycle.closing) return reply.code(503).send({ status: 'shutting_down' })
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', checks })
  })
}

export default health
