import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { testDatabaseUrl } from '../helper.js'
import { ROOT } from '../fixtures/spawn.js'

// `npm run migrate` against a server without TLS: the failure names the setting to change.
const run = promisify(execFile)

t.test('migrate against a PostgreSQL without TLS, with DATABASE_SSL=require, names DATABASE_SSL', async (t) => {
  const url = new URL(await testDatabaseUrl())
  url.searchParams.delete('sslmode')
  const failed = await run(process.execPath, [join(ROOT, 'dist', 'scripts', 'migrate.js')], {
    cwd: mkdtempSync(join(tmpdir(), 'svc-migrate-')),
    env: { PATH: process.env.PATH ?? '', ENVIRONMENT: 'test', DATABASE_URL: url.toString(), DATABASE_SSL: 'require' }
  }).then(() => undefined, (err: { code: number, stderr: string }) => err)
  t.ok(failed, 'it fails')
  t.equal(failed?.code, 1)
  t.match(failed?.stderr, /does not support SSL.*DATABASE_SSL is require.*DATABASE_SSL=disable/)
})
