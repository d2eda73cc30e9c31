// Peer "fastify-plugins": what a team gets by assembling the official plugins, as
// fastify/demo does: @fastify/helmet, @fastify/cors, @fastify/rate-limit (in memory),
// @fastify/jwt and Fastify's default logger at info (a line per request). The routes do
// the same work as bench/baseline.mjs: the same JWT verification, SQL and bodies.
import Fastify from 'fastify'
import fastifyCors from '@fastify/cors'
import fastifyHelmet from '@fastify/helmet'
import fastifyJwt from '@fastify/jwt'
import fastifyRateLimit from '@fastify/rate-limit'
import pg from 'pg'
import { benchRoutes } from '../fastify-routes.mjs'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
// An idle client's backend ending (the bench drops its database at the end) must not crash the peer mid-run.
pool.on('error', () => {})
const app = Fastify({ logger: { level: 'info' } })
await app.register(fastifyHelmet)
await app.register(fastifyCors)
// The bench raises the service's limits out of the way; the same here.
await app.register(fastifyRateLimit, { max: 1_000_000_000, timeWindow: '1 minute' })
await app.register(fastifyJwt, { secret: process.env.JWT_SECRET_KEY, verify: { algorithms: ['HS256'] } })

benchRoutes(app, pool)

app.addHook('onClose', () => pool.end())
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
