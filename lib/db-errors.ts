// Errors that mean "the database cannot be reached right now" rather than "this
// query is wrong": they become a 503 the client may retry, never a 500.
const UNAVAILABLE_SQLSTATES = new Set([
  '08000', '08001', '08003', '08004', '08006', '08007', '08P01', // connection exceptions
  '57P01', '57P02', '57P03', // admin shutdown, crash shutdown, cannot connect now
  '53300', // too many connections
  '57014' // statement timeout
])
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EAI_AGAIN'])
const UNAVAILABLE_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'Query read timeout',
  'Client has encountered a connection error',
  'Cannot use a pool after calling end'
]

/**
 * Whether `err` says the database cannot be reached. A Node network code counts only
 * on an error of a system call (connect, read, write, getaddrinfo: a socket of the
 * driver's): an HTTP request that its client aborted also carries ECONNRESET, with
 * no system call, and a client hanging up is not a database outage.
 */
export function isDatabaseUnavailable (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown, message?: unknown, errors?: unknown[], syscall?: unknown }
  if (typeof e.code === 'string' && UNAVAILABLE_SQLSTATES.has(e.code)) return true
  if (typeof e.code === 'string' && UNAVAILABLE_NODE_CODES.has(e.code) && typeof e.syscall === 'string') return true
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.some((m) => (e.message as string).includes(m))) return true
  // AggregateError from net.connect when every address of a host refuses.
  return Array.isArray(e.errors) && e.errors.some(isDatabaseUnavailable)
}
