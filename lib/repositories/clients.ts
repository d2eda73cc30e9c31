import { randomBytes } from 'node:crypto'
import { hashPassword } from '../passwords.js'
import { notifyRevocation } from '../revocation-events.js'
import { isUniqueViolation, withTransaction, type Connectable, type Queryable } from './db.js'

export interface Client {
  id: string
  name: string
  scopes: string[]
  created_at: Date
  disabled_at: Date | null
}
export interface ClientWithHash extends Client {
  secret_hash: string
}

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/
export const CLIENT_NAME = /^[\p{L}\p{N}][\p{L}\p{N} ._:-]{0,99}$/u

export class ClientNameTaken extends Error {
  constructor (name: string) {
    super(`an enabled client named "${name}" already exists`)
    this.name = 'ClientNameTaken'
  }
}

/**
 * Creates a client and returns its secret, which exists only in this return value:
 * the table keeps an argon2id hash. 32 random bytes is far beyond guessing, and the
 * hash makes a stolen database useless for calling the API.
 */
export async function createClient (db: Queryable, name: string, scopes: string[]): Promise<Client & { secret: string }> {
  const secret = randomBytes(32).toString('base64url')
  const hash = await hashPassword(secret)
  try {
    const { rows } = await db.query<Client>(
      `INSERT INTO clients (name, secret_hash, scopes) VALUES ($1, $2, $3)
       RETURNING id, name, scopes, created_at, disabled_at`,
      [name, hash, [...new Set(scopes)]]
    )
    const client = rows[0]
    if (!client) throw new Error('client insert returned no row')
    return { ...client, secret }
  } catch (err) {
    if (isUniqueViolation(err)) throw new ClientNameTaken(name)
    throw err
  }
}

export async function listClients (db: Queryable): Promise<Client[]> {
  const { rows } = await db.query<Client>('SELECT id, name, scopes, created_at, disabled_at FROM clients ORDER BY created_at, id')
  return rows
}

export async function findClient (db: Queryable, id: string): Promise<ClientWithHash | undefined> {
  const { rows } = await db.query<ClientWithHash>(
    'SELECT id, name, scopes, created_at, disabled_at, secret_hash FROM clients WHERE id = $1',
    [id]
  )
  return rows[0]
}

/** Disables the client and revokes its tokens on every replica; undefined when there is no such client. */
export async function disableClient (pool: Connectable, id: string): Promise<Client | undefined> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<Client>(
      `UPDATE clients SET disabled_at = COALESCE(disabled_at, now()) WHERE id = $1
       RETURNING id, name, scopes, created_at, disabled_at`,
      [id]
    )
    const row = rows[0]
    if (row) await notifyRevocation(client, { t: 'client', id })
    return row
  })
}

export async function listDisabledClientIds (db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM clients WHERE disabled_at IS NOT NULL')
  return rows.map((r) => r.id)
}
