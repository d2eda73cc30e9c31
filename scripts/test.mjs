#!/usr/bin/env node
// `npm test`: one embedded PostgreSQL for the whole run (or TEST_DATABASE_URL when
// set), then tap. Each test file creates its own database on that server.
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'

const args = process.argv.slice(2)
let stopDatabase = async () => {}
const env = { ...process.env, ENVIRONMENT: 'test' }

if (!process.env.TEST_DATABASE_URL) {
  const { startEmbeddedPostgres } = await import('../dist/db/embedded-postgres.js')
  const dir = mkdtempSync(join(tmpdir(), 'svc-test-pg-'))
  // Run as root, PostgreSQL runs as a `postgres` user, which must reach the folder.
  chmodSync(dir, 0o755)
  const port = await freePort()
  const started = Date.now()
  const db = await startEmbeddedPostgres({ dir: join(dir, 'data'), port, database: 'postgres', persistent: false })
  process.stdout.write(`# embedded PostgreSQL on port ${port} (${Date.now() - started} ms)\n`)
  env.TEST_DATABASE_URL = db.adminUrl
  stopDatabase = async () => {
    await db.stop()
    rmSync(dir, { recursive: true, force: true })
  }
} else {
  process.stdout.write('# using TEST_DATABASE_URL\n')
}

const tap = spawn(process.execPath, [join(import.meta.dirname, '..', 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'), ...args], { stdio: 'inherit', env })
const forward = (signal) => tap.kill(signal)
process.on('SIGINT', forward)
process.on('SIGTERM', forward)
const code = await new Promise((resolve) => tap.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))))
await stopDatabase()
process.exit(code)

function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}
