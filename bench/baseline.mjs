// The benchmark's baseline: a minimal Fastify server doing the same work as the
// service on each measured route (the same JWT verification with @fastify/jwt,
// the same SQL with pg, argon2id verification of the same hash) and nothing else: no request
// ids, CORS, Helmet, rate limits, revocation checks, logging or metrics. The
// ratio of the service's throughput to this one's is the cost of our stack.
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import pg from 'pg'
import { benchRoutes } from './fastify-routes.mjs'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const app = Fastify({ logger: false })
await app.register(fastifyJwt, { secret: process.env.JWT_SECRET_KEY, verify: { algorithms: ['HS256'] } })

benchRoutes(app, pool)

app.addHook('onClose', () => pool.end())
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
