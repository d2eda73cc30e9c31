import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseEnv } from 'node:util'
import { normaliseDatabaseUrl, SSLMODES, urlSslMode } from './database-url.js'
import { CONFIG_VARIABLES } from './schema.js'

// Where values come from before they are validated (config/load.ts): the
// environment, `.env` in development, X_FILE files, and the database URL's aliases.

export type Source = Readonly<Record<string, string | undefined>>

// Variables whose empty value means something (an empty list, a bare token).
const EMPTY_IS_A_VALUE = new Set(['JWT_HEADER_TYPE', 'CORS_ORIGINS'])

export function readDotenv (dir: string, problems: string[]): Source {
  let text: string
  try {
    text = readFileSync(join(dir, '.env'), 'utf8')
  } catch {
    return {}
  }
  try {
    return parseEnv(text)
  } catch {
    problems.push('.env cannot be parsed')
    return {}
  }
}

/** Applies `X_FILE` (Docker and Kubernetes secrets) and drops empty values that mean "unset". */
export function resolveFiles (source: Source, problems: string[], reported: Set<string>): Record<string, string> {
  const out: Record<string, string> = {}
  const report = (name: string) => reported.add(name === 'SQLALCHEMY_DATABASE_URI' ? 'DATABASE_URL' : name)
  for (const name of CONFIG_VARIABLES) {
    let value = source[name]
    const file = source[`${name}_FILE`]
    if (file !== undefined && file !== '') {
      if (value !== undefined && value !== '') {
        problems.push(`${name} and ${name}_FILE are both set; set only one`)
        report(name)
        continue
      }
      try {
        value = readFileSync(file, 'utf8').replace(/\r?\n$/, '')
      } catch {
        problems.push(`${name}_FILE names a file that cannot be read`)
        report(name)
        continue
      }
    }
    if (value === undefined || (value === '' && !EMPTY_IS_A_VALUE.has(name))) continue
    out[name] = value
  }
  return out
}

/** Accepts SQLAlchemy-style URLs from the Flask service and normalises them to `postgresql://`. */
export function resolveDatabaseUrl (given: Record<string, string>, problems: string[], reported: Set<string>): void {
  const urls: string[] = []
  for (const name of ['SQLALCHEMY_DATABASE_URI', 'DATABASE_URL'] as const) {
    const raw = given[name]
    if (raw === undefined) continue
    const normalised = normaliseDatabaseUrl(raw)
    if (normalised === undefined) {
      problems.push(`${name} must be a PostgreSQL URL (postgresql://user:password@host:port/database)`)
      reported.add('DATABASE_URL')
    } else {
      urls.push(normalised)
    }
  }
  delete given.SQLALCHEMY_DATABASE_URI
  delete given.DATABASE_URL
  if (urls.length === 2 && urls[0] !== urls[1]) {
    problems.push('SQLALCHEMY_DATABASE_URI and DATABASE_URL are both set and differ; set only one')
  }
  const url = urls[0]
  if (url === undefined) return
  given.DATABASE_URL = url
  const sslmode = urlSslMode(url)
  if (sslmode !== null && !Object.hasOwn(SSLMODES, sslmode)) {
    // An unknown sslmode would otherwise be ignored silently, and SSL with it.
    problems.push(`DATABASE_URL has an sslmode outside its allowed set (${Object.keys(SSLMODES).join(', ')})`)
  }
}

export function splitList (value: string): string[] {
  return value.split(',').map((v) => v.trim()).filter((v) => v !== '')
}
