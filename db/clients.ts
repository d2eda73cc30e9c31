import { randomBytes } from 'node:crypto'
import { hashPassword } from '../lib/passwords.js'
import { notifyRevocation } from './revocation-events.js'
import { isUniqueViolation, withTransaction, type Database } from './queryable.js'

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

export class ClientNameTaken extends Error {
  constructor (name: string) {
    super(`an enabled client named "${name}" already exists`)
    this.name = 'ClientNameTaken'
  }
}

const COLUMNS = 'id, name, scopes, created_at, disabled_at'

/** Service clients of the client credentials grant. */
export function clientsRepository (db: Database) {
  return {
    /**
     * Creates a client and returns its secret, which exists only in this return value:
     * the table keeps an argon2id hash. 32 random bytes is far beyond guessing, and the
     * hash makes a stolen database useless for calling the API.
     */
    async create (name: string, scopes: string[]): Promise<Client & { secret: string }> {
      const secret = randomBytes(32).toString('base64url')
      const hash = await hashPassword(secret)
      try {
        const { rows } = await db.query<Client>(
          `INSERT INTO clients (name, secret_hash, scopes) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
          [name, hash, [...new Set(scopes)]]
        )
        const client = rows[0]
        if (!client) throw new Error('client insert returned no row')
        return { ...client, secret }
      } catch (err) {
        if (isUniqueViolation(err)) throw new ClientNameTaken(name)
        throw err
      }
    },

    async list (): Promise<Client[]> {
      const { rows } = await db.query<Client>(`SELECT ${COLUMNS} FROM clients ORDER BY created_at, id`)
      return rows
    },

    async find (id: string): Promise<ClientWithHash | undefined> {
      const { rows } = await db.query<ClientWithHash>(`SELECT ${COLUMNS}, secret_hash FROM clients WHERE id = $1`, [id])
      return rows[0]
    },

    /** Disables the client and revokes its tokens on every replica; undefined when there is no such client. */
    async disable (id: string): Promise<Client | undefined> {
      return withTransaction(db, async (client) => {
        const { rows } = await client.query<Client>(
          `UPDATE clients SET disabled_at = COALESCE(disabled_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
          [id]
        )
        const row = rows[0]
        if (row) await notifyRevocation(client, { t: 'client', id })
        return row
      })
    },

    async listDisabledIds (): Promise<string[]> {
      const { rows } = await db.query<{ id: string }>('SELECT id FROM clients WHERE disabled_at IS NOT NULL')
      return rows.map((r) => r.id)
    }
  }
}

export type ClientsRepository = ReturnType<typeof clientsRepository>
