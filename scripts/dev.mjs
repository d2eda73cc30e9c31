#!/usr/bin/env node
// `npm run dev`: compile, then run the app through fastify-cli (`fastify start
// --options`, the same server options as production) with reload on change while
// `tsc --watch` recompiles. Without DATABASE_URL the app starts an embedded
// PostgreSQL with its data in .data/postgres.
import { spawn, spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const bin = (name) => join(root, 'node_modules', '.bin', name)

rmSync(join(root, 'dist'), { recursive: true, force: true })
const build = spawnSync(bin('tsc'), ['-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
if (build.status !== 0) process.exit(build.status ?? 1)

// Validate before starting anything, with the message listing every problem (the
// app itself logs the warnings).
const { loadConfigOrExit } = await import('../dist/config/load.js')
const { config } = loadConfigOrExit()

const tsc = spawn(bin('tsc'), ['-p', 'tsconfig.build.json', '--watch', '--preserveWatchOutput'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
const server = spawn(bin('fastify'), [
  'start', '--options', '--watch',
  // Only compiled output triggers a reload; the database's own files never do.
  '--ignore-watch=.ts$ .data test bench docs deploy .tap coverage',
  '--address', config.HOST, '--port', String(config.PORT),
  'dist/app.js'
  // Its own process group: fastify-cli's watcher forks the app, and stopping only
  // the watcher would leave the app (and its embedded PostgreSQL) running.
], { cwd: root, stdio: 'inherit', detached: true })

const stop = (signal) => {
  tsc.kill(signal)
  try { process.kill(-server.pid, signal) } catch {}
}
process.on('SIGINT', () => stop('SIGINT'))
process.on('SIGTERM', () => stop('SIGTERM'))
server.on('exit', (code) => { tsc.kill(); process.exit(code ?? 0) })
