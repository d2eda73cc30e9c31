import { createHash } from 'node:crypto'

// Entity tags for versioned resources (RFC 9110 §8.8.3). The tag names the version,
// which conditional writes compare in the database, plus a short digest of the
// resource id, so that a tag copied from one note never matches another note that
// happens to be at the same version.

const MAX_VERSION = 2_147_483_647 // PostgreSQL integer: a larger number must not reach the query
const TAG = /^"(\d{1,10})-([A-Za-z0-9_-]{11})"$/

function idDigest (id: string): string {
  return createHash('sha256').update(id.toLowerCase()).digest('base64url').slice(0, 11)
}

/** The strong ETag of version `version` of resource `id`. */
export function etag (id: string, version: number): string {
  return `"${version}-${idDigest(id)}"`
}

/** The members of an If-Match / If-None-Match list: `*`, or entity tags (malformed members are skipped). */
function members (header: string): { any: boolean, tags: Array<{ weak: boolean, tag: string }> } {
  if (header.trim() === '*') return { any: true, tags: [] }
  const tags: Array<{ weak: boolean, tag: string }> = []
  for (const raw of header.split(',')) {
    const m = /^\s*(W\/)?("[\x21\x23-\x7E\x80-\xFF]*")\s*$/.exec(raw)
    if (m) tags.push({ weak: m[1] !== undefined, tag: m[2]! })
  }
  return { any: false, tags }
}

/**
 * If-None-Match (RFC 9110 §13.1.2, weak comparison): true when the client's copy is
 * current, so a GET may answer 304.
 */
export function noneMatch (header: string | undefined, current: string): boolean {
  if (header === undefined) return false
  const { any, tags } = members(header)
  return any || tags.some((t) => t.tag === current)
}

/**
 * If-Match (RFC 9110 §13.1.1, strong comparison) turned into the versions of `id`
 * that a write may apply to: null when there is no condition (absent, or `*` on an
 * existing resource), otherwise the list, possibly empty when no tag can match.
 */
export function expectedVersions (header: string | undefined, id: string): number[] | null {
  if (header === undefined) return null
  const { any, tags } = members(header)
  if (any) return null
  const versions: number[] = []
  for (const { weak, tag } of tags) {
    const m = weak ? null : TAG.exec(tag)
    if (!m) continue
    const version = Number(m[1])
    // Character-for-character equal to a tag we would send: "01-…" is not "1-…".
    if (version >= 1 && version <= MAX_VERSION && tag === etag(id, version)) versions.push(version)
  }
  return versions
}
