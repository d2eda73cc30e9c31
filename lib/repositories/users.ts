import { isUniqueViolation, type Queryable } from './db.js'

export interface User {
  id: string
  email: string
  created_at: Date
}
export interface UserWithHash extends User {
  password_hash: string
}

// Emails are trimmed by the caller and lower-cased here by PostgreSQL itself, so
// that the stored value always satisfies the table's CHECK (email = lower(btrim(email)))
// whatever the Unicode rules of JavaScript and of the database's collation.

/** The new user, or undefined when the email is already registered. */
export async function createUser (db: Queryable, email: string, passwordHash: string): Promise<User | undefined> {
  try {
    const { rows } = await db.query<User>(
      'INSERT INTO users (email, password_hash) VALUES (lower($1), $2) RETURNING id, email, created_at',
      [email, passwordHash]
    )
    return rows[0]
  } catch (err) {
    if (isUniqueViolation(err)) return undefined
    throw err
  }
}

export async function findUserByEmail (db: Queryable, email: string): Promise<UserWithHash | undefined> {
  const { rows } = await db.query<UserWithHash>(
    'SELECT id, email, password_hash, created_at FROM users WHERE email = lower($1)',
    [email]
  )
  return rows[0]
}

export async function findUserById (db: Queryable, id: string): Promise<User | undefined> {
  const { rows } = await db.query<User>('SELECT id, email, created_at FROM users WHERE id = $1', [id])
  return rows[0]
}
