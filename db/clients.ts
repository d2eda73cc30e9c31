import { randomBytes } from 'node:crypto'
import { hashPassword } from '../lib/passwords.js'
import { notifyRevocation } from './revocation-events.js'
import { isUniqueViolation, withTransaction, type Database } from './queryable.js'

/** How a client proves itself at /auth/token (docs/auth.md, "Service clients"). */
export type ClientAuthMethod = 'client_secret' | 'private_key_jwt' | 'federated'

export interface Client {
  id: string
  name: string
  scopes: string[]
  created_at: Date
  disabled_at: Date | null
  auth_method: ClientAuthMethod
  /** Federated clients: whose tokens, about whom, and optionally where the issuer's keys are. */
  federated_issuer: string | null
  federated_subject: string | null
  jwks_uri: string | null
}
export interface ClientWithHash extends Client {
  /** Null for clients without a secret. */
  secret_hash: string | null
}
/** A public JWK of a private_key_jwt client, as stored (public members only). */
export type ClientJwk = Record<string, unknown> & { kid: string }
export interface ClientWithKeys extends Client {
  keys: ClientJwk[]
}
export interface FederatedIdentity { issuer: string, subject: string, jwksUri?: string }

export class ClientNameTaken extends Error {
  constructor (name: string) {
    super(`an enabled client named "${name}" already exists`)
    this.name = 'ClientNameTaken'
  }
}

export class FederatedIdentityTaken extends Error {
  constructor () {
    super('an enabled client with this federated issuer and subject already exists')
    this.name = 'FederatedIdentityTaken'
  }
}

const COLUMNS = 'id, name, scopes, created_at, disabled_at, auth_method, federated_issuer, federated_subject, jwks_uri'

function uniqueViolation (err: unknown, name: string): Error {
  if (!isUniqueViolation(err)) return err as Error
  return (err as { constraint?: string }).constraint === 'clients_active_federated_identity_idx' ? new FederatedIdentityTaken() : new ClientNameTaken(name)
}

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
        throw uniqueViolation(err, name)
      }
    },

    /** A private_key_jwt client holding `keys` (public JWKs, checked by the caller). */
    async createWithKeys (name: string, scopes: string[], keys: ClientJwk[]): Promise<ClientWithKeys> {
      try {
        return await withTransaction(db, async (tx) => {
          const { rows } = await tx.query<Client>(
            `INSERT INTO clients (name, scopes, auth_method) VALUES ($1, $2, 'private_key_jwt') RETURNING ${COLUMNS}`,
            [name, [...new Set(scopes)]]
          )
          const client = rows[0]
          if (!client) throw new Error('client insert returned no row')
          for (const jwk of keys) await tx.query('INSERT INTO client_keys (client_id, kid, jwk) VALUES ($1, $2, $3)', [client.id, jwk.kid, jwk])
          return { ...client, keys }
        })
      } catch (err) {
        throw uniqueViolation(err, name)
      }
    },

    /** A client that authenticates with a token of another issuer (workload identity). */
    async createFederated (name: string, scopes: string[], identity: FederatedIdentity): Promise<Client> {
      try {
        const { rows } = await db.query<Client>(
          `INSERT INTO clients (name, scopes, auth_method, federated_issuer, federated_subject, jwks_uri)
           VALUES ($1, $2, 'federated', $3, $4, $5) RETURNING ${COLUMNS}`,
          [name, [...new Set(scopes)], identity.issuer, identity.subject, identity.jwksUri ?? null]
        )
        const client = rows[0]
        if (!client) throw new Error('client insert returned no row')
        return client
      } catch (err) {
        throw uniqueViolation(err, name)
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

    /** The client and its public keys, in one query (every private_key_jwt token request asks). */
    async findWithKeys (id: string): Promise<ClientWithKeys | undefined> {
      const { rows } = await db.query<ClientWithKeys>(
        `SELECT ${COLUMNS.split(', ').map((c) => `c.${c}`).join(', ')},
           COALESCE((SELECT json_agg(k.jwk ORDER BY k.kid) FROM client_keys k WHERE k.client_id = c.id), '[]') AS keys
         FROM clients c WHERE c.id = $1`,
        [id]
      )
      return rows[0]
    },

    /** The enabled client of a federated identity, if one is registered. */
    async findFederated (issuer: string, subject: string): Promise<Client | undefined> {
      const { rows } = await db.query<Client>(
        `SELECT ${COLUMNS} FROM clients WHERE auth_method = 'federated' AND federated_issuer = $1 AND federated_subject = $2 AND disabled_at IS NULL`,
        [issuer, subject]
      )
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
