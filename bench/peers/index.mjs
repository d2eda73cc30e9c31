// The peers of `npm run bench` (issue #16): what a team would build instead of adopting
// this service, each doing the same work per route (same routes, same JWT verification
// with the same secret, same SQL, same response bodies) on the same database.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

export const PEERS = ['fastify-plugins', 'express', 'flask']

/**
 * The targets per peer: `throughput` is the least ratio of our throughput to
 * theirs, `cpu` the least ratio of their server CPU per request to ours; `exceptLogin`
 * names the targets that do not apply to POST /auth/login (argon2id dominates it).
 */
export const peerTargets = {
  'fastify-plugins': { throughput: 1.2 },
  express: { throughput: 2, cpu: 4, exceptLogin: ['cpu'] },
  flask: { cpu: 10, exceptLogin: ['cpu'] }
}

// Debian's interpreter, where apt installs python3-flask (a pyenv shim on PATH has none of it).
const PYTHON = '/usr/bin/python3'

/** How to start a peer: `{ argv, cmd?, env? }`, or `{ skip }` with the reason it cannot run here. */
export function peerCommand (name, { root }) {
  const dir = join(root, 'bench', 'peers')
  if (name === 'fastify-plugins') return { argv: [join(dir, 'fastify-plugins.mjs')] }
  if (name === 'express') return { argv: [join(dir, 'express.mjs')] }
  if (name === 'flask') {
    const probe = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import flask, jwt, psycopg2, argon2, gunicorn'], { stdio: 'ignore' }).status === 0
    if (!probe) return { skip: 'needs Debian packages: apt-get install -y python3-flask python3-jwt python3-psycopg2 python3-argon2 gunicorn' }
    return {
      cmd: PYTHON,
      argv: ['-m', 'gunicorn', '--config', join(dir, 'flask', 'gunicorn.conf.py'), '--chdir', join(dir, 'flask'), 'app:app'],
      env: { PYTHONDONTWRITEBYTECODE: '1' }
    }
  }
  throw new Error(`unknown peer ${name}`)
}
