#!/usr/bin/env node
// `npm run dev`: compile in watch mode, run the app through fastify-cli (`fastify
// start --options`, the same server options as production), and restart it when,
// and only when, a rebuild changed compiled JavaScript in dist/: never because a
// log file, .data/ or anything else in the checkout was written (docs/operations.md,
// "Development server"). Without DATABASE_URL the app starts an embedded PostgreSQL
// with its data in .data/postgres.
import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'

const root = join(import.meta.dirname, '..')
// fastify-cli's command, run by this Node.js so that Node's own flags apply to it.
const fastifyCli = join(root, 'node_modules', 'fastify-cli', 'cli.js')

/** One JSON line on stdout, shaped like the app's own log lines. */
function say (level, msg, extra = {}) {
  process.stdout.write(JSON.stringify({ level, time: Date.now(), name: 'dev', msg, ...extra }) + '\n')
}

let config
let server // { child, exited, stoppedByUs }
let quitting = false
let queue = Promise.resolve()
// Compiled files written since the last restart, relative to the checkout.
let changed = new Set()

// The compiler writes a file only when its content differs, so an unchanged output
// (the first build of a watch, a touched source) is never a reason to restart.
const system = {
  ...ts.sys,
  writeFile (path, data, writeByteOrderMark) {
    let same = false
    try { same = readFileSync(path, 'utf8') === data } catch {}
    if (same) return
    changed.add(relative(root, path))
    ts.sys.writeFile(path, data, writeByteOrderMark)
  }
}

const formatHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' }
let firstBuild = true
const host = ts.createWatchCompilerHost(
  join(root, 'tsconfig.build.json'), {}, system, ts.createEmitAndSemanticDiagnosticsBuilderProgram,
  (diagnostic) => process.stderr.write(ts.formatDiagnosticsWithColorAndContext([diagnostic], formatHost)),
  // 6193/6194: "Found N error(s). Watching for file changes." ends every build.
  (diagnostic, _newLine, _options, errorCount) => {
    if (diagnostic.code === 6193 || diagnostic.code === 6194) built(errorCount ?? 0)
  }
)

rmSync(join(root, 'dist'), { recursive: true, force: true })
// The first build runs inside this call, before it returns (quit() closes it later).
const watch = ts.createWatchProgram(host)

function built (errors) {
  if (firstBuild) {
    firstBuild = false
    changed = new Set()
    if (errors > 0) {
      say(50, `the build has ${errors} error(s): fix them, then run npm run dev again`)
      quit(1)
      return
    }
    queue = queue.then(startFirst)
    return
  }
  if (errors > 0) {
    say(40, `the build has ${errors} error(s): the server keeps running the last good build`)
    return
  }
  const files = [...changed].filter((f) => f.endsWith('.js')).sort()
  changed = new Set()
  if (files.length === 0 || quitting) return
  queue = queue.then(() => restart(files))
}

async function startFirst () {
  // Validated before anything starts, with the message listing every problem (the
  // app itself logs the warnings, once per start).
  const { loadConfigOrExit } = await import('../dist/config/load.js')
  config = loadConfigOrExit().config
  if (config.DATABASE_URL === undefined) {
    // Run as root from a folder the postgres user cannot enter (a clone under /root),
    // the embedded server's binaries and data move to a place it can: said once, here.
    const { placeForPostgresUser } = await import('../dist/db/embedded-postgres.js')
    const { note } = placeForPostgresUser(resolve(root, config.EMBEDDED_POSTGRES_DIR))
    if (note) process.stderr.write(note + '\n')
  }
  start()
}

function start () {
  // `node --import dist/telemetry.js`: tracing (when OTEL_EXPORTER_OTLP_ENDPOINT is set)
  // starts before fastify-cli loads the app (docs/operations.md, "Tracing").
  const child = spawn(process.execPath, [
    '--import', pathToFileURL(join(root, 'dist', 'telemetry.js')).href, fastifyCli,
    'start', '--options', '--address', config.HOST, '--port', String(config.PORT), 'dist/app.js'
    // Its own process group, so that a stuck server and its embedded PostgreSQL can be ended together.
  ], { cwd: root, stdio: 'inherit', detached: true })
  const entry = { child, stoppedByUs: false }
  entry.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  server = entry
  entry.exited.then(({ code, signal }) => {
    if (entry.stoppedByUs || quitting) return
    if (server === entry) server = undefined
    say(50, `the server stopped (${signal ?? `exit code ${code}`}); it starts again when a compiled file changes`)
  })
}

/** SIGTERM lets the app close (and stop its embedded PostgreSQL); its group is killed if it hangs. */
async function stop (entry, signal = 'SIGTERM') {
  entry.stoppedByUs = true
  try { entry.child.kill(signal) } catch {}
  const timer = setTimeout(() => { try { process.kill(-entry.child.pid, 'SIGKILL') } catch {} }, 15_000)
  await entry.exited
  clearTimeout(timer)
}

async function restart (files) {
  const shown = files.length > 3 ? `${files.slice(0, 3).join(', ')} and ${files.length - 3} more` : files.join(', ')
  say(30, `restarting the server: ${shown} changed`, { changed: files })
  if (server) {
    const previous = server
    server = undefined
    await stop(previous)
  }
  if (!quitting) start()
}

function quit (code, signal) {
  if (quitting) return
  quitting = true
  setImmediate(() => watch.close())
  queue.then(async () => {
    if (server) await stop(server, signal)
    process.exit(code)
  })
}

process.on('SIGINT', () => quit(0, 'SIGINT'))
process.on('SIGTERM', () => quit(0, 'SIGTERM'))
// Never leave a server behind, whatever ends this process.
process.on('exit', () => { if (server) try { process.kill(-server.child.pid, 'SIGKILL') } catch {} })
