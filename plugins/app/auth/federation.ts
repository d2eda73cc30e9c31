import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey } from 'jose'

// The published keys of the issuers that federated clients name (docs/auth.md,
// "Workload identity"): found through the issuer's discovery document unless the
// client was registered with a jwks_uri, fetched with jose's remote JWK set, cached,
// refreshed on an unknown kid. Nothing here is ever fetched for an issuer outside
// FEDERATION_ALLOWED_ISSUERS, and every fetch is bounded in time, size and frequency.

export interface FederationOptions {
  /** Whether keys may be fetched from this issuer at all. */
  allowed: (issuer: string) => boolean
  /** https only (production): keys fetched over plain HTTP could be anyone's. */
  httpsOnly: boolean
  /** The least time between two fetches of one URL (30 s; shorter only in tests). */
  minFetchIntervalMs?: number
  /** How long a fetched key set is used before it is fetched again (10 minutes; shorter only in tests). */
  cacheMaxAgeMs?: number
  timeoutMs?: number
  maxBytes?: number
}

export interface FederatedKeys {
  allowed: (issuer: string) => boolean
  /** The key resolver for tokens of `issuer` (jose's jwtVerify calls it with the token's header). */
  keySet: (issuer: string, jwksUri: string | null) => JWTVerifyGetKey
}

/** A fetch refused before any request was sent, or a response that was not usable. */
export class FetchRefused extends Error {}

// A discovery document or a JWK set is a few kilobytes; 256 KiB leaves room to spare.
const MAX_BYTES = 256 * 1024

/** The body, read only as far as `maxBytes`: a 10 MB answer costs us 256 KiB, not 10 MB. */
async function cappedBody (response: Response, maxBytes: number, href: string): Promise<Buffer> {
  const tooLarge = new FetchRefused(`${href} sent more than ${maxBytes} bytes`)
  if (Number(response.headers.get('content-length') ?? 0) > maxBytes) {
    await response.body?.cancel().catch(() => {})
    throw tooLarge
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength
    // Leaving the loop early cancels the stream (and so the download).
    if (size > maxBytes) throw tooLarge
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

export function federatedKeys (options: FederationOptions): FederatedKeys {
  const minInterval = options.minFetchIntervalMs ?? 30_000
  const timeoutMs = options.timeoutMs ?? 2000
  const maxBytes = options.maxBytes ?? MAX_BYTES
  const lastFetch = new Map<string, number>()
  const sets = new Map<string, JWTVerifyGetKey>()

  /** One GET, at most once per URL per interval, no redirects, a capped body; only a 200 is an answer. */
  async function boundedFetch (url: string | URL, init?: RequestInit): Promise<Response> {
    const href = String(url)
    if (options.httpsOnly && !href.startsWith('https://')) throw new FetchRefused(`refused to fetch ${href} over plain HTTP`)
    const last = lastFetch.get(href)
    if (last !== undefined && Date.now() - last < minInterval) throw new FetchRefused(`${href} was fetched less than ${minInterval / 1000} s ago`)
    lastFetch.set(href, Date.now())
    const response = await fetch(href, { headers: init?.headers, method: 'GET', redirect: 'manual', signal: init?.signal ?? AbortSignal.timeout(timeoutMs) })
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {})
      throw new FetchRefused(`${href} answered ${response.status}`)
    }
    return new Response(await cappedBody(response, maxBytes, href), { status: 200, headers: { 'content-type': 'application/json' } })
  }

  /** OpenID Connect Discovery 1.0 §4: the document at issuer + /.well-known/openid-configuration names the key set. */
  async function discoverJwksUri (issuer: string): Promise<string> {
    const response = await boundedFetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)
    let document: unknown
    try {
      document = await response.json()
    } catch {
      throw new FetchRefused('the discovery document is not JSON')
    }
    const { issuer: named, jwks_uri: jwksUri } = (document ?? {}) as Record<string, unknown>
    // §4.3: the document must be that issuer's own, or another could answer for it.
    if (named !== issuer) throw new FetchRefused('the discovery document names another issuer')
    if (typeof jwksUri !== 'string' || !URL.canParse(jwksUri) || !/^https?:$/.test(new URL(jwksUri).protocol)) throw new FetchRefused('the discovery document has no valid jwks_uri')
    return jwksUri
  }

  function keySet (issuer: string, jwksUri: string | null): JWTVerifyGetKey {
    const cacheKey = `${issuer} ${jwksUri ?? ''}`
    const cached = sets.get(cacheKey)
    if (cached) return cached
    let remote: ReturnType<typeof createRemoteJWKSet> | undefined
    let pending: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined
    const resolve: JWTVerifyGetKey = async (header, token) => {
      if (!options.allowed(issuer)) throw new FetchRefused('the issuer is not in FEDERATION_ALLOWED_ISSUERS')
      if (remote === undefined) {
        pending ??= (jwksUri !== null ? Promise.resolve(jwksUri) : discoverJwksUri(issuer))
          .then((uri) => createRemoteJWKSet(new URL(uri), { timeoutDuration: timeoutMs, cooldownDuration: minInterval, cacheMaxAge: options.cacheMaxAgeMs ?? 600_000, [customFetch]: boundedFetch }))
          .finally(() => { pending = undefined })
        remote = await pending
      }
      try {
        return await remote(header, token)
      } catch (err) {
        // The issuer unreachable or answering nonsense: the keys it last published still hold.
        const stale = remote.jwks()
        if (err instanceof errors.JWKSNoMatchingKey) throw err
        if (stale !== undefined) return createLocalJWKSet(stale)(header, token)
        // Never loaded: the next attempt asks the discovery document again (the key set may have moved).
        if (jwksUri === null) remote = undefined
        throw err
      }
    }
    sets.set(cacheKey, resolve)
    return resolve
  }

  return { allowed: options.allowed, keySet }
}
