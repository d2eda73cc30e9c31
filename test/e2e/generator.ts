import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import t from 'tap'
import { makeClone } from '../fixtures/dev-clone.js'

// `npm run generate -- resource …` (scripts/generate.mjs) in a new user's checkout:
// the refusals first (fast, nothing may change), then a resource generated and
// `npm run lint`, `npm run typecheck` and the whole `npm test` run in that checkout,
// as a team would right after generating. Not a *.test.ts file, so the default
// `npm test` does not run it: `npm run test:generator` (the whole suite again, on
// both cores: 29 min measured on a shared 2-core machine at load average 10). GENERATOR_TEST_ONLY_GENERATED=1 runs only the generated test file instead
// of the whole suite, for work on the templates.

interface Run { code: number | null, output: string }

/**
 * This process's environment without what tap gives its test files (NODE_OPTIONS
 * loading this checkout's tap hooks into every node process, TAP_* settings): the
 * clone's commands run as a user types them. The test runner's database server
 * (TEST_DATABASE_URL) serves the clone's tests too: each test file makes its own
 * database on it.
 */
function cleanEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(TAP|_TAPJS|NODE_OPTIONS$|NODE_CHANNEL)/.test(key)))
}

function run (cwd: string, command: string, args: string[], log?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => {
      if (log !== undefined) writeFileSync(log, output)
      resolve({ code, output })
    })
  })
}

const generate = (dir: string, args: string[]) => run(dir, process.execPath, [join(dir, 'scripts', 'generate.mjs'), ...args])

/** Path and content digest of every file the generator may write or change. */
function snapshot (dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (path: string): void => {
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path)) walk(join(path, entry))
      return
    }
    out.set(relative(dir, path), createHash('sha256').update(readFileSync(path)).digest('hex'))
  }
  for (const part of ['migrations', 'schemas', 'db', 'routes', 'test/routes', 'plugins']) walk(join(dir, part))
  return out
}

const tail = (text: string, lines = 60) => text.split('\n').slice(-lines).join('\n')

t.test('npm run generate -- resource', { timeout: 1_800_000 }, async (t) => {
  const { dir } = makeClone(t, 0o755)
  // A git checkout, as a clone is: the suite's own clone tests (test/fixtures/dev-clone.ts) list its files with git.
  for (const args of [['init', '-q'], ['add', '-A'], ['-c', 'user.name=generator test', '-c', 'user.email=generator@test.invalid', 'commit', '-q', '-m', 'clone']]) {
    const git = await run(dir, 'git', args)
    if (git.code !== 0) throw new Error(`git ${args.join(' ')}: ${git.output}`)
  }
  const before = snapshot(dir)

  t.test('refuses names that clash or cannot be generated, and writes nothing', async (t) => {
    const cases: Array<[string[], RegExp]> = [
      [['resource', 'notes', '--field', 'a:string'], /route prefix the service already uses/],
      [['resource', 'users', '--field', 'a:string'], /exists already/],
      [['resource', 'docs', '--field', 'a:string'], /route prefix/],
      [['resource', 'metrics', '--field', 'a:string'], /route prefix/],
      [['resource', 'health', '--field', 'a:string'], /route prefix|not a plural/],
      [['resource', 'Widgets', '--field', 'a:string'], /not a valid name/],
      [['resource', 'wid_gets', '--field', 'a:string'], /not a valid name/],
      [['resource', 'sheep', '--field', 'a:string'], /not a plural/],
      [['resource', 'status', '--field', 'a:string'], /looks singular/],
      [['resource', 'people', '--singular', 'people', '--field', 'a:string'], /singular and the plural/],
      [['resource', 'types', '--field', 'a:string'], /reserved word in TypeScript/],
      [['resource', 'promises', '--field', 'a:string'], /shadow a global/],
      [['resource', 'cursors', '--field', 'a:string'], /already uses/],
      [['resource', 'references', '--field', 'a:string'], /reserved word in PostgreSQL/],
      [['resource', 'widgets'], /at least one --field/],
      [['resource', 'widgets', '--field', 'id:string'], /already has id/],
      [['resource', 'widgets', '--field', 'order:string'], /reserved word in PostgreSQL/],
      [['resource', 'widgets', '--field', 'class:string'], /reserved word in TypeScript/],
      [['resource', 'widgets', '--field', 'a:float'], /unknown type/],
      [['resource', 'widgets', '--field', 'a:string:0'], /positive integer/],
      [['resource', 'widgets', '--field', 'a:integer:9..1'], /range/],
      [['resource', 'widgets', '--field', 'a:string', '--field', 'a:text'], /given twice/],
      [['resource', 'widgets', 'gadgets', '--field', 'a:string'], /one resource at a time/],
      [['model', 'widgets'], /only generator is "resource"/]
    ]
    for (const [args, message] of cases) {
      const res = await generate(dir, args)
      t.equal(res.code, 1, args.join(' '))
      t.match(res.output, message, args.join(' '))
      t.notMatch(res.output, /\n\s+at /, 'a refusal, not a stack trace')
    }
    t.same(snapshot(dir), before, 'no file was written or changed')
  })

  t.test('generates a resource that passes lint, typecheck and the whole suite', async (t) => {
    const numbers = readdirSync(join(dir, 'migrations')).map((f) => Number(/^(\d+)\./.exec(f)?.[1] ?? 0))
    const next = String(Math.max(...numbers) + 1).padStart(3, '0')
    const res = await generate(dir, ['resource', 'widgets', '--field', 'name:string:120', '--field', 'count:integer', '--field', 'done:boolean', '--field', 'remarks:text:500'])
    t.equal(res.code, 0, res.output)
    for (const file of [`migrations/${next}.do.widgets.sql`, 'schemas/widgets.ts', 'db/widgets.ts', 'routes/widgets/index.ts', 'test/routes/widgets.test.ts']) {
      t.ok(existsSync(join(dir, file)), `${file} written`)
    }
    t.match(readFileSync(join(dir, 'db/index.ts'), 'utf8'), /widgets: widgetsRepository\(db\)/, 'registered in repositories()')
    const auth = readFileSync(join(dir, 'schemas/auth.ts'), 'utf8')
    t.match(auth, /'widgets:read': 'Read widgets'/, 'scopes described in SCOPES')
    t.match(auth, /USER_SCOPES[^\n]*'widgets:read', 'widgets:write'/, 'every user holds them')
    t.match(readFileSync(join(dir, 'plugins/external/swagger.ts'), 'utf8'), /\{ name: 'widgets'/, 'an OpenAPI tag')

    const written = snapshot(dir)
    const again = await generate(dir, ['resource', 'widgets', '--field', 'name:string'])
    t.equal(again.code, 1, 'a second run refuses')
    t.match(again.output, /exists already|route prefix/)
    t.same(snapshot(dir), written, 'and overwrites nothing')

    const lint = await run(dir, 'npm', ['run', 'lint'])
    t.equal(lint.code, 0, `npm run lint\n${tail(lint.output)}`)
    const typecheck = await run(dir, 'npm', ['run', 'typecheck'])
    t.equal(typecheck.code, 0, `npm run typecheck\n${tail(typecheck.output)}`)

    const only = process.env.GENERATOR_TEST_ONLY_GENERATED === '1'
    const test = await run(dir, 'npm', ['test', ...(only ? ['--', 'test/routes/widgets.test.ts'] : [])], join(dir, 'npm-test.log'))
    const summary = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/.exec(test.output)
    // The failing files and subtests first: a tail of the output rarely shows them.
    const failures = test.output.split('\n').filter((line) => /^\s*not ok /.test(line)).join('\n')
    t.equal(test.code, 0, `npm test${only ? ' (the generated file only)' : ''}: ${summary?.[0] ?? 'no summary'}\n${failures}\n${tail(test.output)}`)
    t.match(test.output, /^ok \d+ - test\/routes\/widgets\.test\.ts/m, 'the generated tests ran and passed')
    if (!only) t.match(test.output, /^ok \d+ - test\/routes\/notes\.test\.ts/m, 'and the rest of the suite with them')
  })
})
