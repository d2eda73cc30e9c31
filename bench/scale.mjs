// `npm run bench -- --scale`: how the cost of the notes routes grows with the data
// (issue #16). One service runs on the bench's 50-note database, another on a database
// of its own (bench_scale) seeded with 1,000,000 notes over 10,000 users; the bench user
// owns 10,000 of them. Both are loaded in alternating rounds on the same routes:
//
//   GET /notes?limit=20                 the first page
//   GET /notes?limit=20&cursor=...      a page deep in the list (9,000 notes in; on the
//                                       50-note database, the second page)
//   GET /notes/{id}                     a note (the bench user's oldest)
//   POST /notes
//
// The ratio is the 1M database's throughput over the 50-note one's (target ≥ 1/1.2),
// and the EXPLAIN (ANALYZE, BUFFERS) plans of the list queries go with the results.
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'

const USERS = 10_000
const NOTES = 1_000_000
const OWN_NOTES = 10_000
const DEEP = 9_000
const TARGET = 1 / 1.2

export async function run (ctx) {
  const { root, database, serviceEnvFor, startServer, waitReady, freePort, seedData, log } = ctx
  const small = await startService('service-50', database.url)
  await seedData(small.base)
  const smallSeed = await login(small.base, ctx)

  const scaleUrl = await database.create('bench_scale')
  const large = await startService('service-1m', scaleUrl)
  const started = Date.now()
  await register(large.base, ctx)
  const largeSeed = await login(large.base, ctx)
  const seconds = await seed(scaleUrl, ctx.email, log)
  log(`seeded ${NOTES.toLocaleString('en')} notes over ${USERS.toLocaleString('en')} users in ${seconds} s`)

  const smallDeep = await cursorAt(small.base, smallSeed, 20)
  const largeDeep = await cursorAt(large.base, largeSeed, DEEP)
  const smallId = await oldest(database.url, ctx.email)
  const largeId = await oldest(scaleUrl, ctx.email)

  const auth = (t) => ({ authorization: `Bearer ${t}` })
  const json = { 'content-type': 'application/json' }
  const perServer = (headers, paths) => ({
    headers: { ...headers, ...auth(largeSeed) },
    headersByPort: { [small.port]: { ...headers, ...auth(smallSeed) } },
    ...(paths ? { path: paths[1], pathByPort: { [small.port]: paths[0] } } : {})
  })
  const routes = [
    { id: 'first', name: 'GET /notes?limit=20 (first page)', method: 'GET', path: '/notes?limit=20', ...perServer({}) },
    { id: 'deep', name: `GET /notes?limit=20&cursor= (${DEEP.toLocaleString('en')} deep)`, method: 'GET', ...perServer({}, [`/notes?limit=20&cursor=${smallDeep}`, `/notes?limit=20&cursor=${largeDeep}`]) },
    { id: 'one', name: 'GET /notes/{id}', method: 'GET', ...perServer({}, [`/notes/${smallId}`, `/notes/${largeId}`]) },
    { id: 'create', name: 'POST /notes', method: 'POST', path: '/notes', body: JSON.stringify({ title: 'benchmark note', body: 'written by npm run bench' }), ...perServer(json) }
  ]
  const results = []
  for (const route of routes) {
    log(`${route.name}: 1M notes against 50`)
    const r = await ctx.measureServers(route, [{ name: 'service', port: large.port, pid: large.child.pid }, { name: '50 notes', port: small.port, pid: small.child.pid }], database.postmasterPid)
    results.push(r)
  }
  const plans = await explain(scaleUrl, ctx.email, largeDeep)

  const lines = ['| route | 1M notes req/s | 50 notes req/s | ratio (range) | target ≥ 0.833 | p99 ms (1M / 50) | CPU µs/req (1M / 50) | PG µs/req (1M / 50) | errors |', '|---|---|---|---|---|---|---|---|---|']
  for (const r of results) {
    const o = r.others[0]
    const range = o.ratioRange[0] === o.ratioRange[1] ? '' : ` (${o.ratioRange[0]}–${o.ratioRange[1]})`
    lines.push(`| ${r.route} | ${r.service.reqPerSec} | ${o.reqPerSec} | **${o.ratio}**${range} | ${o.ratio >= TARGET ? 'met' : 'MISSED'} | ${r.service.p99} / ${o.p99} | ${r.service.cpuMicrosPerRequest} / ${o.cpuMicrosPerRequest} | ${r.service.pgMicrosPerRequest ?? '-'} / ${o.pgMicrosPerRequest ?? '-'} | ${r.service.errors + r.service.non2xx + o.errors + o.non2xx} |`)
  }
  const markdown = `${lines.join('\n')}\n\nSeeding ${NOTES.toLocaleString('en')} notes over ${USERS.toLocaleString('en')} users: ${seconds} s (register and login before it: ${Math.round((Date.now() - started) / 1000 - seconds)} s).\n\nFirst page:\n\n\`\`\`\n${plans.first}\n\`\`\`\n\n${DEEP.toLocaleString('en')} deep, by cursor:\n\n\`\`\`\n${plans.deep}\n\`\`\`\n`
  process.stdout.write(`\nGrowth: ${ctx.args.smoke ? 1 : 'alternating'} rounds, ${ctx.machine()}\n\n${markdown}`)
  if (!ctx.args.smoke) {
    const dir = join(root, 'bench', 'results')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'scale.json'), JSON.stringify({ date: new Date().toISOString(), seedSeconds: seconds, results, plans }, null, 2) + '\n')
    writeFileSync(join(dir, 'scale.md'), `# Growth ${new Date().toISOString()}\n\n${markdown}`)
    log('results written to bench/results/scale.{json,md}')
  }
  if (results.some((r) => r.service.errors + r.service.non2xx > 0)) process.exitCode = 1

  async function startService (name, url) {
    const port = await freePort()
    const child = startServer(name, [join(root, 'dist', 'server.js')], serviceEnvFor(url, port))
    await waitReady(port, '/health/ready', child)
    return { port, child, base: `http://127.0.0.1:${port}` }
  }
}

async function register (base, { email, password }) {
  const res = await fetch(`${base}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`)
}

async function login (base, { email, password }) {
  const res = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`)
  return (await res.json()).access_token
}

/** The other users (with the bench user's hash: nobody logs in as them) and the notes, in a few statements. */
async function seed (url, email, log) {
  const started = Date.now()
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await c.query(`INSERT INTO users (email, password_hash)
                   SELECT 'scale-' || i || '@example.com', (SELECT password_hash FROM users WHERE email = $1)
                     FROM generate_series(1, $2::int) AS i`, [email, USERS - 1])
    // The bench user's own notes, one second apart, oldest first.
    await c.query(`INSERT INTO notes (owner_id, title, body, created_at, updated_at)
                   SELECT u.id, 'note ' || g, repeat('x', 200), t, t
                     FROM (SELECT id FROM users WHERE email = $1) AS u,
                          generate_series(1, $2::int) AS g,
                          LATERAL (SELECT now() - make_interval(secs => $2::int - g + 60)) AS x(t)`, [email, OWN_NOTES])
    log(`the bench user's ${OWN_NOTES} notes inserted`)
    // Everyone else's, spread evenly, interleaved in time with the bench user's.
    await c.query(`INSERT INTO notes (owner_id, title, body, created_at, updated_at)
                   SELECT u.id, 'note ' || g, repeat('x', 200), t, t
                     FROM generate_series(0, $1::int - 1) AS g
                     JOIN (SELECT id, (row_number() OVER (ORDER BY id)) - 1 AS n FROM users WHERE email <> $2) AS u ON u.n = g % ($3::int - 1),
                          LATERAL (SELECT now() - make_interval(secs => (g % ${OWN_NOTES + 60}) + random())) AS x(t)`, [NOTES - OWN_NOTES, email, USERS])
    await c.query('ANALYZE users, notes')
  } finally {
    await c.end()
  }
  return Math.round((Date.now() - started) / 100) / 10
}

/** The cursor that starts `depth` notes into the bench user's list, walked 100 at a time. */
async function cursorAt (base, token, depth) {
  let cursor = null
  let seen = 0
  while (seen < depth) {
    const limit = Math.min(100, depth - seen)
    const res = await fetch(`${base}/notes?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${token}` } })
    if (res.status !== 200) throw new Error(`walking the list: ${res.status} ${await res.text()}`)
    const page = await res.json()
    seen += page.items.length
    cursor = page.next_cursor
    if (cursor === null) throw new Error(`the list ended after ${seen} notes`)
  }
  return cursor
}

async function oldest (url, email) {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const { rows } = await c.query('SELECT n.id FROM notes n JOIN users u ON u.id = n.owner_id WHERE u.email = $1 ORDER BY n.created_at LIMIT 1', [email])
    return rows[0].id
  } finally {
    await c.end()
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of the list queries, as db/notes.ts sends them (with the cursor's position for the deep one). */
async function explain (url, email, cursor) {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const { rows: [user] } = await c.query('SELECT id FROM users WHERE email = $1', [email])
    // The cursor's position (lib/cursor.ts signs it; its place in the list is the 9,000th note).
    const { rows: [at] } = await c.query(`SELECT created_at::text AS created_at, id FROM notes WHERE owner_id = $1 ORDER BY created_at DESC, id DESC OFFSET ${DEEP - 1} LIMIT 1`, [user.id])
    const utc = (col) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${col}`
    const cols = `id, title, body, version, ${utc('created_at')}, ${utc('updated_at')}`
    // The second of two runs: the plan of a warm cache, as the service's requests see it.
    const plan = async (sql, values) => {
      await c.query(sql, values)
      return (await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, values)).rows.map((r) => r['QUERY PLAN']).join('\n')
    }
    return {
      first: await plan(`SELECT ${cols} FROM notes WHERE owner_id = $1 ORDER BY notes.created_at DESC, id DESC LIMIT $2`, [user.id, 21]),
      deep: await plan(`SELECT ${cols} FROM notes WHERE owner_id = $1 AND (notes.created_at, id) < ($2::timestamptz, $3::uuid) ORDER BY notes.created_at DESC, id DESC LIMIT $4`, [user.id, at.created_at, at.id, 21]),
      cursor
    }
  } finally {
    await c.end()
  }
}
