import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { TEST_PASSWORD, build, registerUser } from '../helper.js'
import { fromAddress, listening, loopbackAliases, type Answer } from '../fixtures/from-address.js'
import { freePort, redisServerMissing, startRedis } from '../fixtures/redis-server.js'

// Login throttling per account (docs/contract.md, "When dependencies fail"): over
// real connections from several client addresses (127.0.0.x), to two replicas on
// one database, so neither the address nor the replica lets a guesser escape.

const WRONG = 'not the right password at all'
const freshEmail = () => `throttle-${randomBytes(5).toString('hex')}@example.test`

interface Replicas { apps: FastifyInstance[], ports: number[], logs: Array<Record<string, unknown>> }

async function replicas (t: Test, env: Record<string, string>): Promise<Replicas> {
  const logs: Array<Record<string, unknown>> = []
  const apps = [await build(t, { env, logs }), await build(t, { env })]
  const ports = [await listening(apps[0]!), await listening(apps[1]!)]
  return { apps, ports, logs }
}

let address = 10
/** Each login from a new client address, alternating between the replicas. */
function login (r: Replicas, email: string, password: string, replica = address % 2): Promise<Answer> {
  address++
  return fromAddress(`127.0.0.${address % 250 + 2}`, r.ports[replica]!, 'POST', '/auth/login', { body: { email, password } })
}

async function statuses (r: Replicas, email: string, passwords: string[]): Promise<number[]> {
  const out: number[] = []
  for (const password of passwords) out.push((await login(r, email, password)).status)
  return out
}

t.test('PostgreSQL (no Redis): failures per account are counted across replicas and addresses', async (t) => {
  if (!await loopbackAliases(t)) return
  const r = await replicas(t, { LOGIN_MAX_FAILURES: '3', LOGIN_FAILURE_WINDOW: '3 seconds' })
  const known = await registerUser(r.apps[0]!, { email: freshEmail() })

  t.same(await statuses(r, known.email, [WRONG, WRONG, WRONG]), [401, 401, 401], 'three failures, three addresses, both replicas')
  const throttled = await login(r, known.email, TEST_PASSWORD)
  t.equal(throttled.status, 429, 'the fourth attempt is refused even with the right password, from a new address')
  t.equal(throttled.json().code, 'RATE_LIMITED')
  const retryAfter = Number(throttled.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 3, `Retry-After ${retryAfter} s, until the window passes`)
  t.equal((await login(r, known.email, TEST_PASSWORD, 0)).status, 429, 'on the other replica too')
  t.equal((await login(r, ` ${known.email.toUpperCase()} `, TEST_PASSWORD)).status, 429, 'the email is normalised before counting')

  const other = await registerUser(r.apps[1]!, { email: freshEmail() })
  t.equal((await login(r, other.email, TEST_PASSWORD)).status, 200, 'another account is not affected')

  await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + 200))
  t.equal((await login(r, known.email, TEST_PASSWORD)).status, 200, 'the window passed: the right password works again')

  const { rows } = await r.apps[0]!.pg.query<{ account_key: string }>('SELECT account_key FROM login_attempts')
  t.notOk(JSON.stringify(rows).includes(known.email.split('@')[0] as string), 'the table holds keyed hashes, never the email')
})

t.test('an unknown email is throttled exactly like a known one', async (t) => {
  if (!await loopbackAliases(t)) return
  const r = await replicas(t, { LOGIN_MAX_FAILURES: '2', LOGIN_FAILURE_WINDOW: '1 minute' })
  const known = await registerUser(r.apps[0]!, { email: freshEmail() })
  const unknown = freshEmail()
  const answers = async (email: string) => {
    const out: Array<{ status: number, code: unknown, message: unknown, retryAfter: unknown }> = []
    for (const password of [WRONG, WRONG, WRONG, TEST_PASSWORD]) {
      const res = await login(r, email, password)
      out.push({ status: res.status, code: res.json().code, message: res.json().message, retryAfter: res.headers['retry-after'] })
    }
    return out
  }
  const forKnown = await answers(known.email)
  const forUnknown = await answers(unknown)
  t.same(forKnown.map((a) => a.status), [401, 401, 429, 429])
  t.same(forUnknown.map((a) => ({ ...a, retryAfter: undefined })), forKnown.map((a) => ({ ...a, retryAfter: undefined })), 'the same statuses, codes and messages')
  t.ok(forUnknown.slice(2).every((a) => Number(a.retryAfter) > 55), 'and a Retry-After for both')
})

t.test('a successful login resets the count', async (t) => {
  if (!await loopbackAliases(t)) return
  const r = await replicas(t, { LOGIN_MAX_FAILURES: '3', LOGIN_FAILURE_WINDOW: '1 minute' })
  const user = await registerUser(r.apps[0]!, { email: freshEmail() })
  t.same(await statuses(r, user.email, [WRONG, WRONG, TEST_PASSWORD]), [401, 401, 200])
  t.same(await statuses(r, user.email, [WRONG, WRONG, WRONG, WRONG]), [401, 401, 401, 429], 'three more failures allowed after the success')
})

t.test('concurrent guesses are counted before any password is checked: at most LOGIN_MAX_FAILURES are verified', async (t) => {
  if (!await loopbackAliases(t)) return
  const r = await replicas(t, { LOGIN_MAX_FAILURES: '3', LOGIN_FAILURE_WINDOW: '1 minute' })
  const user = await registerUser(r.apps[0]!, { email: freshEmail() })
  const results = await Promise.all(Array.from({ length: 12 }, () => login(r, user.email, WRONG)))
  const counts = results.reduce<Record<number, number>>((acc, res) => ({ ...acc, [res.status]: (acc[res.status] ?? 0) + 1 }), {})
  t.same(counts, { 401: 3, 429: 9 }, '12 guesses at once on two replicas: 3 checked, 9 refused')
})

t.test('throttled logins are security events with their Retry-After; the burst is logged whole', async (t) => {
  if (!await loopbackAliases(t)) return
  const r = await replicas(t, { LOGIN_MAX_FAILURES: '1', LOGIN_FAILURE_WINDOW: '1 minute' })
  const email = freshEmail()
  for (let i = 0; i < 12; i++) await login(r, email, WRONG, 0)
  const events = r.logs.filter((l) => typeof l.event === 'string' && (l.event as string).startsWith('auth.login.'))
  t.same(events.map((e) => e.event), ['auth.login.failed', ...Array(11).fill('auth.login.throttled')])
  t.match(events[1], { level: 40, retryAfter: Number, remoteAddress: /^127\.0\.0\.\d+$/, reqId: String })
  t.notOk(JSON.stringify(r.logs).includes(WRONG), 'no password in the logs')
})

const skip = redisServerMissing()

t.test('with Redis: counted in Redis for both replicas, per replica while Redis is down', { skip }, async (t) => {
  if (!await loopbackAliases(t)) return
  const redisPort = await freePort()
  const redis = await startRedis(t, redisPort)
  const r = await replicas(t, {
    LOGIN_MAX_FAILURES: '2',
    LOGIN_FAILURE_WINDOW: '1 minute',
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    REDIS_KEY_PREFIX: `throttle-${randomBytes(4).toString('hex')}:`
  })
  const deadline = Date.now() + 5000
  while (!r.apps.every((app) => app.redis?.status === 'ready') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const user = await registerUser(r.apps[0]!, { email: freshEmail() })
  const rowsInTable = async () => (await r.apps[0]!.pg.query<{ n: number }>('SELECT count(*)::int AS n FROM login_attempts')).rows[0]?.n
  const before = await rowsInTable()
  t.same(await statuses(r, user.email, [WRONG, WRONG, TEST_PASSWORD]), [401, 401, 429], 'shared through Redis')
  t.equal(await rowsInTable(), before, 'nothing in PostgreSQL when Redis counts')

  await redis.kill()
  const other = await registerUser(r.apps[0]!, { email: freshEmail() })
  t.same([(await login(r, other.email, WRONG, 0)).status, (await login(r, other.email, WRONG, 0)).status, (await login(r, other.email, TEST_PASSWORD, 0)).status],
    [401, 401, 429], 'Redis down: replica a still throttles the account')
  t.equal((await login(r, other.email, TEST_PASSWORD, 1)).status, 200, 'replica b counts its own attempts meanwhile (the fallback is per replica)')
})
