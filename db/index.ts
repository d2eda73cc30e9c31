import { clientAssertionsRepository } from './client-assertions.js'
import { clientsRepository } from './clients.js'
import { idempotencyRepository } from './idempotency.js'
import { loginAttemptsRepository } from './login-attempts.js'
import { notesRepository } from './notes.js'
import type { Database } from './queryable.js'
import { revokedTokensRepository } from './revoked-tokens.js'
import { sessionsRepository } from './sessions.js'
import { usersRepository } from './users.js'

/** Every table behind a small interface: the app decorates these, scripts use them directly. */
export function repositories (db: Database) {
  return {
    users: usersRepository(db),
    sessions: sessionsRepository(db),
    clients: clientsRepository(db),
    notes: notesRepository(db),
    idempotency: idempotencyRepository(db),
    loginAttempts: loginAttemptsRepository(db),
    clientAssertions: clientAssertionsRepository(db),
    revokedTokens: revokedTokensRepository(db)
  }
}

export type Repositories = ReturnType<typeof repositories>
