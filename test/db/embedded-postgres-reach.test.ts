import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROOT_PLACE, placeForPostgresUser } from '../../db/embedded-postgres.js'

// As root the embedded PostgreSQL runs as the `postgres` user: a data folder it
// cannot reach moves to ROOT_PLACE (one folder per checkout path), saying why.

t.test('a data folder the postgres user cannot reach moves to a place it can, naming the folder in the way', {
  skip: process.getuid?.() === 0 ? false : 'only root runs PostgreSQL as another user'
}, async (t) => {
  const top = mkdtempSync(join(tmpdir(), 'svc-reach-'))
  t.teardown(() => rmSync(top, { recursive: true, force: true }))
  mkdirSync(join(top, 'private', 'inner'), { recursive: true })
  chmodSync(top, 0o755)
  chmodSync(join(top, 'private'), 0o700)
  chmodSync(join(top, 'private', 'inner'), 0o700)
  const data = join(top, 'private', 'inner', '.data', 'postgres')
  const place = placeForPostgresUser(data)
  t.match(place.dataDir, new RegExp(`^${ROOT_PLACE}/data-[0-9a-f]{16}$`), 'the data under the shared place')
  t.equal(placeForPostgresUser(data).dataDir, place.dataDir, 'the same folder for the same checkout, start after start')
  t.not(placeForPostgresUser(join(top, 'other')).dataDir, place.dataDir, 'another checkout, another folder')
  t.match(place.note, `who cannot enter ${join(top, 'private')} (mode 0700)`, 'the outermost folder in the way, with its mode')
  t.notMatch(place.note, /\n/, 'one line')
  chmodSync(join(top, 'private'), 0o711)
  chmodSync(join(top, 'private', 'inner'), 0o711)
  t.equal(placeForPostgresUser(data).dataDir, data, 'folders others may enter (x without r) are enough: the data stays')
})
