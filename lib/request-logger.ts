import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'pino'

type Log = (...args: unknown[]) => void

/**
 * `request.log`, whose pino child is made only when the request logs something of
 * its own. Fastify makes a child per request to bind the request id, and pino
 * builds a formatter set and a closure per level for each one (BENCHMARKS.md). Most
 * requests log nothing but their completion line, which the log controller writes
 * through `parent` with the request id as its first field: the same JSON line the
 * child would have written.
 */
export class RequestLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined

  constructor (readonly parent: FastifyBaseLogger, readonly bindings: Bindings) {}

  #log (): FastifyBaseLogger {
    this.#child ??= this.parent.child(this.bindings)
    return this.#child
  }

  get level (): string { return (this.#child ?? this.parent).level }
  set level (level: string) { this.#log().level = level }

  fatal (...args: unknown[]): void { const log = this.#log(); (log.fatal as Log).apply(log, args) }
  error (...args: unknown[]): void { const log = this.#log(); (log.error as Log).apply(log, args) }
  warn (...args: unknown[]): void { const log = this.#log(); (log.warn as Log).apply(log, args) }
  info (...args: unknown[]): void { const log = this.#log(); (log.info as Log).apply(log, args) }
  debug (...args: unknown[]): void { const log = this.#log(); (log.debug as Log).apply(log, args) }
  trace (...args: unknown[]): void { const log = this.#log(); (log.trace as Log).apply(log, args) }
  silent (): void {}

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#log().child(bindings, options)
  }
}

/**
 * Fastify's childLoggerFactory. A route's own log level or serializers need a real
 * child from the start; every other request gets the lazy one.
 */
export function requestLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (options.level !== undefined || options.serializers !== undefined) return logger.child(bindings, options)
  return new RequestLogger(logger, bindings)
}
