// Security-relevant events (docs/contract.md, "Security events"): log lines with an
// `event` field, at info for successes and warn for refusals and anomalies, with the
// client address and the principal's id when known, never a secret. Every
// occurrence is logged: a burst is evidence, not noise.

export type SecurityEvent =
  | 'auth.login.succeeded'
  | 'auth.login.failed'
  | 'auth.login.throttled'
  | 'auth.refresh.rotated'
  | 'auth.refresh.reuse_detected'
  | 'auth.logout'
  | 'auth.token.refused'
  | 'auth.csrf.failed'
  | 'client.token.issued'
  | 'client.auth.failed'
  | 'client.disabled'
  | 'token.revoked'
  | 'ratelimit.exceeded'

const WARN: ReadonlySet<SecurityEvent> = new Set<SecurityEvent>([
  'auth.login.failed', 'auth.login.throttled', 'auth.refresh.reuse_detected', 'auth.token.refused',
  'auth.csrf.failed', 'client.auth.failed', 'ratelimit.exceeded'
])

type LogFn = (obj: object, msg: string) => void

/** What an event is written through: a request (its logger binds reqId) or any logger with an address. */
export interface EventSource {
  ip?: string
  log: { info: LogFn, warn: LogFn }
}

/** Ids and codes only: `userId`, `clientId`, `sessionId`, `code`, … never a token, password or secret. */
export type EventFields = Record<string, string | number | boolean | null | undefined>

export function securityEvent (source: EventSource, event: SecurityEvent, fields: EventFields = {}): void {
  const line = { event, remoteAddress: source.ip, ...fields }
  if (WARN.has(event)) source.log.warn(line, event)
  else source.log.info(line, event)
}
