import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { freePort } from '../fixtures/deploy/process.js'
import { makeClone, runDev } from '../fixtures/dev-clone.js'

// As root, the embedded PostgreSQL runs as the `postgres` user, who cannot enter
// a clone under /root (mode 0700): `npm run dev` must say so at once, in one line,
// with what to do, instead of crash-looping on `spawn .../initdb EACCES`.

// A clone builds from scratch: on two shared cores, under the rest of the suite, that
// alone can take a minute or more.
t.setTimeout(240_000)

t.test('as root from a clone in a 0700 folder, npm run dev stops at once with one line saying what to do', {
  skip: process.getuid?.() === 0 ? false : 'only root runs PostgreSQL as another user (as anyone else it runs as you)'
}, async (t) => {
  const clone = makeClone(t, 0o700)
  const dev = runDev(t, clone, { PORT: String(await freePort()), EMBEDDED_POSTGRES_PORT: String(await freePort()) })
  // Bounded well inside tap's own timeout: a crash loop must fail here, with its output.
  const outcome = await Promise.race([dev.exited, sleep(150_000, 'still running' as const, { ref: false })])
  if (outcome === 'still running') {
    const lines = dev.lines()
    t.fail('npm run dev was still running after 150 s instead of stopping', {
      starts: lines.filter((l) => /insecure development defaults/.test(l)).length,
      failures: [...new Set(lines.filter((l) => /EACCES|crashed|waiting for file changes/.test(l)).map((l) => l.replace(/\d{10,}|"pid":\d+/g, '…').slice(0, 240)))]
    })
    return
  }
  const { code } = outcome
  const lines = dev.lines()
  t.not(code, 0, 'a non-zero exit')
  const said = lines.filter((l) => /embedded PostgreSQL/.test(l))
  t.equal(said.length, 1, 'one line about it', { output: lines })
  t.match(said[0], `cannot enter ${clone.parent} (mode 0700)`, 'naming the folder in the way and its mode')
  t.match(said[0], /run as a non-root user.*DATABASE_URL/, 'and what to do')
  t.notMatch(dev.output(), /EACCES|Server listening|waiting for file changes|restarting/, 'no crash, no listening, no loop')
})
