import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import { ApiError } from '../../lib/errors.js'

const METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE']
// Browsers cache a preflight this long (seconds), saving one round trip per request.
const PREFLIGHT_MAX_AGE = 600
export const RATE_LIMIT_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after']

/** Header names once each, whatever their case (the JWT header may be Authorization already). */
function uniqueHeaders (names: string[]): string[] {
  const seen = new Map<string, string>()
  for (const name of names) if (!seen.has(name.toLowerCase())) seen.set(name.toLowerCase(), name)
  return [...seen.values()]
}

/**
 * @fastify/cors with an exact-origin allow-list (docs/edge.md, "CORS"). The decision
 * is a function rather than the library's array: for an array the library still
 * sends Access-Control-Allow-Credentials, -Methods and -Headers to unlisted origins,
 * where `false` sends no Access-Control-* header at all. Origins are compared as
 * whole strings: no pattern, no suffix, no reflection of an unlisted origin.
 * After security-headers (a preflight is answered in this hook, and later hooks
 * never run for it); the rate limiter runs after it, so a 429 stays readable.
 */
export default fp(async function corsPlugin (fastify) {
  const config = fastify.config
  const allowed = new Set(config.CORS_ORIGINS)
  // `*` is refused with cookie tokens (config/rules.ts); never sent with credentials.
  const anyOrigin = allowed.has('*')
  const isAllowed = (origin: string | undefined): origin is string => origin !== undefined && (anyOrigin || allowed.has(origin))

  // The library answers a preflight without Access-Control-Request-Method with a
  // text/plain 400; this one has the error shape of every other 400.
  fastify.addHook('onRequest', function refuseMalformedPreflight (request, _reply, done) {
    if (request.method === 'OPTIONS' && isAllowed(request.headers.origin) && request.headers['access-control-request-method'] === undefined) {
      done(new ApiError('BAD_REQUEST', 'A CORS preflight request needs an Access-Control-Request-Method header'))
      return
    }
    done()
  })

  await fastify.register(cors, {
    hook: 'onRequest',
    origin (origin, callback) {
      if (!isAllowed(origin)) callback(null, false)
      else callback(null, anyOrigin ? '*' : origin)
    },
    credentials: !anyOrigin,
    methods: METHODS,
    // If-Match and If-None-Match are not CORS-safelisted: without them a browser's
    // conditional PATCH or GET (docs/notes.md, ETags) fails its preflight.
    allowedHeaders: uniqueHeaders([config.JWT_HEADER_NAME, 'Content-Type', 'X-CSRF-TOKEN', config.REQUEST_ID_HEADER, 'If-Match', 'If-None-Match']),
    exposedHeaders: uniqueHeaders([config.REQUEST_ID_HEADER, 'ETag', 'Location', ...RATE_LIMIT_HEADERS]),
    maxAge: PREFLIGHT_MAX_AGE,
    strictPreflight: true,
    preflightContinue: false
  })
}, { name: 'cors', dependencies: ['config', 'security-headers'] })
