import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

// A caller's request id is used only when it is safe to log and echo
// (docs/contract.md, "Every request"); anything else gets a new UUID v4.
const REQUEST_ID = /^[A-Za-z0-9\-_.:]{1,128}$/

/** Fastify's genReqId for the configured header (Fastify would take the header's value verbatim). */
export function requestIdGenerator (headerName: string): (req: IncomingMessage) => string {
  const header = headerName.toLowerCase()
  return function genReqId (req) {
    const value = req.headers[header]
    return typeof value === 'string' && REQUEST_ID.test(value) ? value : randomUUID()
  }
}
