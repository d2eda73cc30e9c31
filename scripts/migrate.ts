import { loadConfigOrExit } from '../config/load.js'
import { cliDatabase } from '../db/cli-database.js'
import { migrateUrl } from '../db/migrate.js'

// `npm run migrate`: applies pending migrations with the service's own
// configuration (a Kubernetes Job runs this before a rollout). Safe to run while
// replicas start: migrations take a PostgreSQL advisory lock.

/** pg's words for a server without TLS say nothing of the setting that asked for it. */
function sslHint (err: Error, mode: string): string {
  if (!/does not support SSL/i.test(err.message)) return ''
  return ` (DATABASE_SSL is ${mode}: enable TLS on the server, or set DATABASE_SSL=disable where the network is trusted, as in development; an sslmode in the URL wins over it)`
}
const { config } = loadConfigOrExit()
const db = await cliDatabase(config)
try {
  const applied = await migrateUrl(db.connectionString, db.ssl, {
    info: (obj: object, msg?: string) => { process.stdout.write(JSON.stringify({ ...obj, msg }) + '\n') }
  })
  process.stdout.write(JSON.stringify({ msg: 'migrations up to date', applied }) + '\n')
} catch (err) {
  process.stderr.write(`migration failed: ${(err as Error).message}${sslHint(err as Error, config.DATABASE_SSL)}\n`)
  process.exitCode = 1
} finally {
  await db.close()
}
