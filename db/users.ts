import { isUniqueViolation, type Queryable } from './queryable.js'

export interface User {
  id: string
  email: string
  created_at: Date
}
export interface UserWithHash extends User {
  password_hash: string
}

// Emails arrive normalised by the service (lib/credentials.ts normaliseEmail: NFKC,
// Unicode lower-casing, trimmed) and are stored and compared as they are: PostgreSQL's
// lower() would depend on the database's collation (docs/auth.md).

/** Accounts. Every query is parameterised. */
export function usersRepository (db: Queryable) {
  return {
    /** The new user, or undefined when the email is already registered. `email` is normalised. */
    async create (email: string, passwordHash: string): Promise<User | undefined> {
      try {
        const { rows } = await db.query<User>(
          'INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id, email, created_at',
          [email, passwordHash]
        )
        return rows[0]
      } catch (err) {
        if (isUniqueViolation(err)) return undefined
        throw err
      }
    },

    async findByEmail (email: string): Promise<UserWithHash | undefined> {
      const { rows } = await db.query<UserWithHash>({
        name: 'users-find-by-email',
        text: 'SELECT id, email, password_hash, created_at FROM users WHERE email = $1',
        values: [email]
      })
      return rows[0]
    },

    async findById (id: string): Promise<User | undefined> {
      // Named (prepared once per connection) like the notes statements: GET /auth/me runs it on every request.
      const { rows } = await db.query<User>({ name: 'users-find-by-id', text: 'SELECT id, email, created_at FROM users WHERE id = $1', values: [id] })
      return rows[0]
    }
  }
}

export type UsersRepository = ReturnType<typeof usersRepository>
