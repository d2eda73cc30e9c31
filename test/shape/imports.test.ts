import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'

// Nothing happens when a module is imported (README, "Architecture"): importing any
// compiled module of the service, entry points aside, reads no environment variable
// from our own code, adds no process listener, and never exits the process.

const ROOT = join(import.meta.dirname, '..', '..')
const DIST = join(ROOT, 'dist')
// Commands run when started: that is their job.
const ENTRY_POINTS = new Set(['server.js', 'telemetry.js'])
const isEntryPoint = (file: string) => ENTRY_POINTS.has(file) || file.startsWith('scripts/')

function modules (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return modules(path)
    return name.endsWith('.js') ? [relative(DIST, path)] : []
  })
}

const EVENTS = ['exit', 'beforeExit', 'SIGTERM', 'SIGINT', 'SIGHUP', 'uncaughtException', 'unhandledRejection', 'warning', 'message'] as const
const listenersOf = (event: string): unknown[] => process.listeners(event as NodeJS.Signals)

t.test('importing any module of the service reads no environment, adds no process listener and never exits', async (t) => {
  const files = modules(DIST).filter((file) => !isEntryPoint(file))
  t.ok(files.length > 40, `${files.length} modules`)

  const reads: string[] = []
  const realEnv = process.env
  // Reads made by our own code: the first frame past this trap is in the project (in
  // dist/, or its source when source maps apply), not in a dependency or this test.
  process.env = new Proxy(realEnv, {
    get (target, key) {
      const caller = new Error().stack?.split('\n')[2] ?? ''
      if (caller.includes(ROOT) && !caller.includes('/node_modules/') && !caller.includes(`${ROOT}/test/`)) reads.push(`${String(key)} at ${caller.trim()}`)
      return Reflect.get(target, key)
    }
  })
  const listeners = new Map(EVENTS.map((e) => [e, new Set(listenersOf(e))]))
  const realExit = process.exit
  let exited = false
  process.exit = ((code?: number) => { exited = true; throw new Error(`process.exit(${code}) at import`) }) as typeof process.exit
  try {
    for (const file of files) await import(pathToFileURL(join(DIST, file)).href)
  } finally {
    process.exit = realExit
    process.env = realEnv
  }
  t.same(reads, [], 'no environment variable read')
  t.notOk(exited, 'no exit')
  const added = EVENTS.flatMap((e) => listenersOf(e).filter((l) => !listeners.get(e)?.has(l)).map(() => e))
  t.same(added, [], 'no process listener added')
})
