import fp from 'fastify-plugin'
import { ApiError } from '../../lib/errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's deadline in ms, instead of REQUEST_DEADLINE_MS. */
    deadlineMs?: number
  }
  interface FastifyRequest {
    /** True once the deadline answered 503 for this request: its handler may still be running. */
    deadlineExpired: boolean
    /** True once an answer is on its way (onSend hooks running): too late to replace it. */
    answerSending: boolean
  }
}

/**
 * No request waits longer than this for an answer, whatever a dependency does
 * (docs/contract.md, "Network faults"): 5 s, less what the network and the
 * client's own clock take.
 */
export const REQUEST_DEADLINE_MS = 4500

/**
 * A deadline for every request, 404s included, counted from when its body has
 * arrived: past it, the answer is 503
 * SERVICE_UNAVAILABLE with Retry-After, and whatever the handler sends later is
 * dropped (Fastify logs that it came too late). Fastify's own `handlerTimeout` is not
 * used: in 5.12 it is cancelled as soon as a request body has been read, so it never
 * fires for a POST (fastify/fastify#6725; test/plugins/deadline.test.ts pins this, to
 * notice the fix). A handler keeps running after the deadline: a write may still
 * commit, which is what Idempotency-Key makes safe to retry. Once an answer is
 * being sent (onSend), it is the answer: hooks there bound their own work.
 */
export default fp(async function deadlinePlugin (fastify) {
  fastify.decorateRequest('deadlineExpired', false)
  fastify.decorateRequest('answerSending', false)

  // From the moment the request has fully arrived (preValidation): a slow upload is
  // the client's time, bounded by the server's request timeout, not a dependency's.
  fastify.addHook('preValidation', function startDeadline (request, reply, done) {
    const ms = request.routeOptions.config?.deadlineMs ?? REQUEST_DEADLINE_MS
    const timer = setTimeout(function deadlinePassed () {
      if (reply.sent || reply.raw.headersSent || request.answerSending) return
      request.deadlineExpired = true
      request.log.warn({ deadlineMs: ms }, 'no answer within the deadline: 503')
      reply.send(new ApiError('SERVICE_UNAVAILABLE', 'The service could not answer in time; retry later', { 'retry-after': '1' }))
    }, ms)
    // Never what keeps a process alive.
    timer.unref()
    // The response finished, or the connection went away: nothing left to answer.
    reply.raw.once('close', () => clearTimeout(timer))
    done()
  })

  fastify.addHook('onSend', function answerOnItsWay (request, _reply, payload, done) {
    request.answerSending = true
    done(null, payload)
  })
}, { name: 'deadline', dependencies: ['errors'] })
