// Peer "express": what the most used Node service boilerplates run: Express 5 with
// helmet, cors, express-rate-limit (in memory), jsonwebtoken, pino-http at info (a line
// per request) and pg. The routes do the same work as bench/baseline.mjs: the same JWT
// verification (HS256, the same secret), the same SQL, the same bodies.
import { randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import express from 'express'
import cors from 'cors'
import helmet from 'helmet'
import { rateLimit } from 'express-rate-limit'
import jwt from 'jsonwebtoken'
import { pinoHttp } from 'pino-http'
import { verify } from '@node-rs/argon2'
import pg from 'pg'

const secret = process.env.JWT_SECRET_KEY
const jwtVerify = promisify(jwt.verify)
const jwtSign = promisify(jwt.sign)
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
// An idle client's backend ending (the bench drops its database at the end) must not crash the peer mid-run.
pool.on('error', () => {})
const app = express()
app.use(pinoHttp({ level: 'info' }))
app.use(helmet())
app.use(cors())
// The bench raises the service's limits out of the way; the same here.
app.use(rateLimit({ windowMs: 60_000, limit: 1_000_000_000, standardHeaders: 'draft-8', legacyHeaders: false }))
app.use(express.json())

const utc = (column) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${column}`
const COLUMNS = `id, title, body, version, ${utc('created_at')}, ${utc('updated_at')}`

async function authenticate (req, res, next) {
  const [scheme, token] = (req.headers.authorization ?? '').split(' ')
  if (scheme !== 'Bearer' || !token) return res.status(401).json({ error: 'unauthorized' })
  try {
    req.user = await jwtVerify(token, secret, { algorithms: ['HS256'] })
  } catch {
    return res.status(401).json({ error: 'unauthorized' })
  }
  next()
}

app.get('/health/live', (req, res) => { res.json({ status: 'ok' }) })

app.get('/auth/me', authenticate, async (req, res) => {
  const { rows } = await pool.query('SELECT id, email, created_at FROM users WHERE id = $1', [req.user.sub])
  res.json({ id: rows[0].id, email: rows[0].email, scopes: ['notes:read', 'notes:write'], created_at: rows[0].created_at })
})

app.get('/notes', authenticate, async (req, res) => {
  const limit = Number(req.query.limit ?? 20)
  const { rows } = await pool.query(
    `SELECT ${COLUMNS} FROM notes WHERE owner_id = $1 ORDER BY notes.created_at DESC, id DESC LIMIT $2`,
    [req.user.sub, limit + 1])
  const items = rows.slice(0, limit)
  const last = items[items.length - 1]
  const next = rows.length > limit && last ? Buffer.from(`${last.created_at}|${last.id}`).toString('base64url') : null
  res.json({ items, next_cursor: next })
})

app.post('/notes', authenticate, async (req, res) => {
  const { rows } = await pool.query(
    `INSERT INTO notes (owner_id, title, body) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
    [req.user.sub, req.body.title, req.body.body ?? ''])
  res.status(201).location(`/notes/${rows[0].id}`).json(rows[0])
})

app.post('/auth/login', async (req, res) => {
  const { rows } = await pool.query('SELECT id, email, password_hash FROM users WHERE email = lower($1)', [req.body.email.trim()])
  const user = rows[0]
  if (!user || !(await verify(user.password_hash, req.body.password))) return res.status(401).json({ error: 'invalid' })
  const refreshJti = randomUUID()
  const session = await pool.query(
    `INSERT INTO sessions (user_id, refresh_jti, expires_at)
     VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING id, expires_at`, [user.id, refreshJti, 2592000])
  const sid = session.rows[0].id
  const options = { algorithm: 'HS256' }
  const access = await jwtSign({ sub: user.id, sid, type: 'access', scope: 'notes:read notes:write', jti: randomUUID() }, secret, { ...options, expiresIn: 3600 })
  const refresh = await jwtSign({ sub: user.id, sid, type: 'refresh', jti: refreshJti }, secret, { ...options, expiresIn: 2592000 })
  res.json({ access_token: access, refresh_token: refresh, token_type: 'Bearer', expires_in: 3600 })
})

const server = app.listen(Number(process.env.PORT), '127.0.0.1')
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => { server.close(() => { pool.end().then(() => process.exit(0)) }); server.closeAllConnections() })
}
