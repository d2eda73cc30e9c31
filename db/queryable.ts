import type pg from 'pg'

/** Anything that runs a parameterised query: the pool, a pooled client, a plain client. */
export type Queryable = Pick<pg.Pool, 'query'>
/** What a repository needs: queries, and a client of its own for a transaction. */
export type Database = Pick<pg.Pool, 'query' | 'connect'>

/** Runs `fn` in one transaction on one client, rolled back if it throws. */
export async function withTransaction<T> (db: Pick<pg.Pool, 'connect'>, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect()
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

export function isUniqueViolation (err: unknown): boolean {
  return (err as { code?: string } | null)?.code === '23505'
}

/** What a conditional write (If-Match) did. */
export type WriteResult<T> =
  | { status: 'done', value: T }
  | { status: 'not_found' }
  /** The row exists (for this owner) but is not at any of the expected versions. */
  | { status: 'precondition_failed' }

/**
 * A timestamptz column selected as RFC 3339 text in UTC with every microsecond
 * (`AS column`): a JS Date keeps only milliseconds.
 */
export const utcTimestamp = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${column}`
