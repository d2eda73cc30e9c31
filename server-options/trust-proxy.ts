import type { Config } from '../config/schema.js'

export type TrustProxyOption = false | string[] | ((address: string, hop: number) => boolean)

/**
 * Fastify's `trustProxy` for a TRUST_PROXY setting. Fastify 5.12.1 and later ignore
 * a numeric hop count (a count cannot tell a proxy from a client that connects
 * directly), so a count is given as the equivalent function: hop 0 is the socket
 * peer, hop 1 the address it forwarded for, and so on. A count is only safe when
 * nothing but the proxy chain can reach the port (docs/edge.md, "Proxy trust").
 */
export function trustProxyOption (setting: Config['TRUST_PROXY']): TrustProxyOption {
  if (setting === false || setting === 0) return false
  if (typeof setting === 'number') {
    const hops = setting
    return function trustHops (_address, hop) { return hop < hops }
  }
  return [...setting]
}
