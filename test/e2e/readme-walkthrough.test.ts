import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { freePort } from '../fixtures/deploy/process.js'
import { makeClone, runDev, status, waitFor } from '../fixtures/dev-clone.js'
import { ROOT } from '../fixtures/spawn.js'

// The README is the source of truth for a new user's first requests: its
// walk-through blocks (the ```bash blocks after a `<!-- walk-through: ... -->`
// marker) run here as they are written, in one bash, from a fresh clone, against
// `npm run dev` just started there. The one change is the port: the test's own,
// never 3000. Then Ctrl-C, as a user ends `npm run dev`.

t.setTimeout(300_000)

/** The walk-through blocks of the README, in order. */
export function walkThrough (readme: string): Array<{ name: string, script: string }> {
  const blocks: Array<{ name: string, script: string }> = []
  for (const m of readme.matchAll(/<!-- walk-through: ([^>]+?) -->\s*```bash\n([\s\S]*?)```/g)) {
    blocks.push({ name: m[1]!, script: m[2]! })
  }
  return blocks
}

function bash (script: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

t.test('the README walk-through, run literally from a fresh clone against npm run dev, works end to end; Ctrl-C then ends dev quietly', async (t) => {
  const blocks = walkThrough(readFileSync(join(ROOT, 'README.md'), 'utf8'))
  t.same(blocks.map((b) => b.name), ['users', 'service clients'], 'the README has its two walk-through blocks')
  const clone = makeClone(t, 0o755)
  const port = await freePort()
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', PORT: String(port), EMBEDDED_POSTGRES_PORT: String(await freePort()) }
  const dev = runDev(t, clone, env)
  await waitFor(dev, 'ready server', async () => await status(port) === 200)

  const script = blocks.map((b) => b.script).join('\n').replaceAll('http://127.0.0.1:3000', `http://127.0.0.1:${port}`)
  t.not(script, blocks.map((b) => b.script).join('\n'), 'the README names http://127.0.0.1:3000, replaced by the test\'s port')
  const run = await bash(script, clone.dir, env)
  t.equal(run.code, 0, 'every command succeeded', { stderr: run.stderr, stdout: run.stdout })
  const out = run.stdout
  t.match(out, /"email":"ada@example\.com"/, 'registered')
  t.match(out, /\{"items":\[\{[^\]]*"title":"first"/, 'the note is listed')
  const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]))
  t.same(statuses, [200, 412], 'the PATCH with the ETag as sent is 200; the same ETag again is 412')
  t.notMatch(out, /VALIDATION_ERROR|"statusCode":4\d\d,"error"[^}]*"code":"(?!PRECONDITION_FAILED)/, 'no other error answer')
  t.match(out, /\{"items":\[\{[^\]]*"title":"renamed"/, 'the service client reads Ada\'s notes with ?owner=')
  t.match(out, /"name":"billing"/, 'the client is listed')
  t.match(out, /"disabled_at":"\d{4}-/, 'and disabled')

  // Ctrl-C: the terminal sends SIGINT to npm run dev's process group.
  process.kill(-dev.child.pid!, 'SIGINT')
  const outcome = await Promise.race([dev.exited, sleep(30_000, 'still running' as const, { ref: false })])
  t.not(outcome, 'still running', 'npm run dev ended within 30 s of Ctrl-C')
  const tail = dev.output().split('\n').slice(-15).join('\n')
  t.notMatch(dev.output(), /revocation listener lost/, 'the end is quiet: no "revocation listener lost; reconnecting"', { tail })
})
