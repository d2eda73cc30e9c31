import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT_PLACE, placeForPostgresUser } from '../../db/embedded-postgres.js'
import { freePort } from '../fixtures/deploy/process.js'
import { makeClone, runDev, status, waitFor } from '../fixtures/dev-clone.js'

// As root, the embedded PostgreSQL runs as the `postgres` user, who cannot enter a
// clone under /root (mode 0700). `npm run dev` must still start, as it does for a
// new user who clones into their home folder. The server's binaries and data move to
// ROOT_PLACE, which the postgres user can enter, and one line says so.

// A clone builds from scratch: on two shared cores, under the rest of the suite, that
// alone can take a minute or more.
t.setTimeout(300_000)

t.test('as root from a clone in a 0700 folder, npm run dev starts, saying once where the database went', {
  skip: process.getuid?.() === 0 ? false : 'only root runs PostgreSQL as another user (as anyone else it runs as you)'
}, async (t) => {
  const clone = makeClone(t, 0o700)
  const port = await freePort()
  const dev = runDev(t, clone, { PORT: String(port), EMBEDDED_POSTGRES_PORT: String(await freePort()) })
  const { dataDir } = placeForPostgresUser(join(clone.dir, '.data', 'postgres'))
  t.teardown(async () => {
    // After the dev server (and its PostgreSQL) stopped: runDev's own teardown ends it.
    if (dev.running()) {
      try { process.kill(-dev.child.pid!, 'SIGTERM') } catch {}
      await dev.exited
    }
    rmSync(dataDir, { recursive: true, force: true })
  })
  const readyMs = await waitFor(dev, 'ready server', async () => await status(port) === 200, 240_000)
  t.comment(`ready ${readyMs} ms after \`npm run dev\``)
  t.ok(dataDir.startsWith(`${ROOT_PLACE}/data-`), 'the data is kept where the postgres user can enter')
  t.ok(existsSync(join(dataDir, 'PG_VERSION')), 'and the cluster is there')
  const said = dev.lines().filter((l) => /the "postgres" user, who cannot enter/.test(l))
  t.equal(said.length, 1, 'one line about it', { output: dev.lines() })
  t.match(said[0], `cannot enter ${clone.parent} (mode 0700)`, 'naming the folder in the way and its mode')
  t.match(said[0], `kept under ${ROOT_PLACE}`, 'and where they went')
  t.notMatch(dev.output(), /EACCES|crashed|restarting/, 'no permission error, no crash, no reload')
})
