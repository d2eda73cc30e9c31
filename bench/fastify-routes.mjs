// The routes of bench/baseline.mjs and the fastify-plugins peer (bench/peers/):
// the same work as the service on each measured route (the same JWT verification
// with @fastify/jwt, the same SQL with pg, argon2id verification of the same hash).
import { randomUUID } from 'node:crypto'
import { verify } from '@node-rs/argon2'

/** Registers the measured routes on a Fastify app that has @fastify/jwt registered. */
export function benchRoutes (app, pool) {
  const utc = (column) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${column}`
  const COLUMNS = `id, title, body, version, ${utc('created_at')}, ${utc('updated_at')}`

  async function authenticate (request) {
    await request.jwtVerify()
  }

  app.get('/health/live', async () => ({ status: 'ok' }))

  app.get('/auth/me', { onRequest: authenticate }, async (request) => {
    const { rows } = await pool.query('SELECT id, email, created_at FROM users WHERE id = $1', [request.user.sub])
    return { id: rows[0].id, email: rows[0].email, scopes: ['notes:read', 'notes:write'], created_at: rows[0].created_at }
  })

  app.get('/notes', { onRequest: authenticate }, async (request) => {
    const limit = Number(request.query.limit ?? 20)
    const { rows } = await pool.query(
      `SELECT ${COLUMNS} FROM notes WHERE owner_id = $1 ORDER BY notes.created_at DESC, id DESC LIMIT $2`,
      [request.user.sub, limit + 1])
    const items = rows.slice(0, limit)
    const last = items[items.length - 1]
    const next = rows.length > limit && last ? Buffer.from(`${last.created_at}|${last.id}`).toString('base64url') : null
    return { items, next_cursor: next }
  })

  app.post('/notes', { onRequest: authenticate }, async (request, reply) => {
    const { rows } = await pool.query(
      `INSERT INTO notes (owner_id, title, body) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [request.user.sub, request.body.title, request.body.body ?? ''])
    return reply.code(201).header('location', `/notes/${rows[0].id}`).send(rows[0])
  })

  app.post('/auth/login', async (request, reply) => {
    const { rows } = await pool.query('SELECT id, email, password_hash FROM users WHERE email = lower($1)', [request.body.email.trim()])
    const user = rows[0]
    if (!user || !(await verify(user.password_hash, request.body.password))) return reply.code(401).send({ error: 'invalid' })
    const refreshJti = randomUUID()
    const session = await pool.query(
      `INSERT INTO sessions (user_id, refresh_jti, expires_at)
       VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING id, expires_at`, [user.id, refreshJti, 2592000])
    const sid = session.rows[0].id
    const access = app.jwt.sign({ sub: user.id, sid, type: 'access', scope: 'notes:read notes:write', jti: randomUUID() }, { expiresIn: 3600 })
    const refresh = app.jwt.sign({ sub: user.id, sid, type: 'refresh', jti: refreshJti }, { expiresIn: 2592000 })
    return { access_token: access, refresh_token: refresh, token_type: 'Bearer', expires_in: 3600 }
  })
}
