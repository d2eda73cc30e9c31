/** TRUST_PROXY as lib/config.ts returns it: false, a hop count, or addresses/CIDRs. */
export type TrustProxySetting = boolean | number | string[]

export type TrustProxyOption = false | string[] | ((address: string, hop: number) => boolean)

/**
 * Fastify's `trustProxy` for a TRUST_PROXY setting. Fastify ≥ 5.12.1 ignores a
 * numeric hop count (it trusts nothing, because a count cannot tell a proxy from a
 * client that connects directly), so a count is given as the equivalent function:
 * hop 0 is the socket peer, hop 1 the address it forwarded for, and so on. A count
 * is only safe when nothing but the proxy chain can reach the port; docs/edge.md.
 */
export function trustProxyOption (setting: TrustProxySetting): TrustProxyOption {
  if (setting === false) return false
  if (setting === true) {
    // lib/config.ts refuses `true`: any client could choose its own address.
    throw new RangeError('TRUST_PROXY=true is refused; give the proxy addresses or a hop count')
  }
  if (typeof setting === 'number') {
    if (setting === 0) return false
    const hops = setting
    return function trustHops (_address, hop) { return hop < hops }
  }
  return [...setting]
}
