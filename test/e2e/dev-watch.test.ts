import { appendFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { freePort } from '../fixtures/deploy/process.js'
import { listening, makeClone, runDev, status, waitFor } from '../fixtures/dev-clone.js'

// `npm run dev` from a fresh clone, its output redirected into a file inside the
// checkout (`npm run dev > dev.log`): it starts once, a write to the log, to .data/
// or to any other file never reloads it, and a change to a source file reloads it
// once, saying so in one line. Ports of its own (never 3000 or 54329).

// A clone builds from scratch: on two shared cores, under the rest of the suite, that
// alone can take a minute or more.
t.setTimeout(240_000)

const count = (lines: string[], pattern: RegExp) => lines.filter((l) => pattern.test(l)).length
const LISTENING = /Server listening at/
const INSECURE = /insecure development defaults are in use/
const RESTART = /"name":"dev".*restarting the server/

t.test('npm run dev with its output in a file inside the checkout starts once and reloads only on compiled changes', async (t) => {
  const clone = makeClone(t, 0o755)
  const port = await freePort()
  const pgPort = await freePort()
  const dev = runDev(t, clone, { PORT: String(port), EMBEDDED_POSTGRES_PORT: String(pgPort) })
  const readyMs = await waitFor(dev, 'ready server', async () => await status(port) === 200)
  t.comment(`ready ${readyMs} ms after \`npm run dev\``)

  // Readiness polled every 100 ms for 8 s: each request writes its line into dev.log.
  const gaps: number[] = []
  for (let i = 0; i < 80; i++) {
    if (await status(port) !== 200) gaps.push(i)
    await sleep(100)
  }
  t.same(gaps, [], 'never unavailable after the first start (no restart from the first build)')

  // Files that are not compiled output: none of them may reload the server.
  mkdirSync(join(clone.dir, '.data', 'scratch'), { recursive: true })
  writeFileSync(join(clone.dir, '.data', 'scratch', 'file'), 'x')
  writeFileSync(join(clone.dir, 'notes.txt'), 'a new file in the checkout')
  writeFileSync(join(clone.dir, 'migrations', 'README.txt'), 'not a migration')
  const now = new Date()
  utimesSync(join(clone.dir, 'routes', 'health', 'index.ts'), now, now) // touched, unchanged
  await sleep(4000)
  let lines = dev.lines()
  t.equal(count(lines, LISTENING), 1, 'listened once')
  t.equal(count(lines, INSECURE), 1, 'the insecure-defaults warning once')
  t.equal(count(lines, RESTART), 0, 'no reload for the log file, .data/, new files or a touched source')
  t.ok(count(lines, /request completed/) >= 80, 'while the log file grew by every request line')

  appendFileSync(join(clone.dir, 'routes', 'health', 'index.ts'), '\nexport const reloadMarker = 1\n')
  await waitFor(dev, 'reload line', () => count(dev.lines(), RESTART) === 1, 60_000)
  await waitFor(dev, 'second start', () => count(dev.lines(), LISTENING) === 2, 60_000)
  await waitFor(dev, 'answer from the reloaded server', async () => await status(port) === 200, 60_000)
  await sleep(3000)
  lines = dev.lines()
  const reloads = lines.filter((l) => RESTART.test(l))
  t.equal(reloads.length, 1, 'one reload for one change')
  t.match(JSON.parse(reloads[0]!), { msg: 'restarting the server: dist/routes/health/index.js changed', changed: ['dist/routes/health/index.js'] }, 'the line names what changed')
  t.equal(count(lines, LISTENING), 2, 'and the server listened again, once')
  t.equal(await status(port), 200)

  // Ctrl-C: the terminal signals the foreground group (npm and the dev script).
  process.kill(-dev.child.pid!, 'SIGINT')
  const exit = await dev.exited
  t.comment(`npm run dev exited with ${exit.signal ?? `code ${exit.code}`}`)
  const endedMs = await waitFor(dev, 'the end of the server and its PostgreSQL', async () => !(await listening(port)) && !(await listening(pgPort)), 30_000, true).catch((err) => { t.fail(String(err)); return -1 })
  t.comment(`server and PostgreSQL gone ${endedMs} ms after npm exited`)
  t.notOk(await listening(port), 'Ctrl-C ends the server')
  t.notOk(await listening(pgPort), 'and the embedded PostgreSQL')
})
