import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { postgresUserBlockedBy } from '../../db/embedded-postgres.js'

// As root the embedded PostgreSQL runs as the `postgres` user: a data folder it
// cannot reach must be named before initdb fails with EACCES.

t.test('names the first folder the postgres user cannot enter, from / down', {
  skip: process.getuid?.() === 0 ? false : 'only root runs PostgreSQL as another user'
}, async (t) => {
  const top = mkdtempSync(join(tmpdir(), 'svc-reach-'))
  t.teardown(() => rmSync(top, { recursive: true, force: true }))
  mkdirSync(join(top, 'private', 'inner'), { recursive: true })
  chmodSync(top, 0o755)
  chmodSync(join(top, 'private'), 0o700)
  chmodSync(join(top, 'private', 'inner'), 0o700)
  const message = postgresUserBlockedBy(join(top, 'private', 'inner', '.data', 'postgres'))
  t.match(message, `who cannot enter ${join(top, 'private')} (mode 0700)`, 'the outermost folder in the way, with its mode')
  t.match(message, /run as a non-root user, or set DATABASE_URL/)
  t.notMatch(message, /\n/, 'one line')
  chmodSync(join(top, 'private'), 0o711)
  chmodSync(join(top, 'private', 'inner'), 0o711)
  t.equal(postgresUserBlockedBy(join(top, 'private', 'inner', '.data', 'postgres')), undefined, 'folders others may enter (x without r) are enough')
})
