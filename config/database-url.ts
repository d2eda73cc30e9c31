import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import type { Config } from './schema.js'

// Every rule about the database URL lives here: the accepted spellings (the Flask
// service's SQLAlchemy URLs included), the SSL mode it implies, and the pg options.

type SslMode = Config['DATABASE_SSL']

/** libpq's sslmode values and the DATABASE_SSL mode each one means here. */
export const SSLMODES: Readonly<Record<string, SslMode>> = {
  disable: 'disable',
  allow: 'disable',
  prefer: 'require',
  require: 'require',
  'verify-ca': 'verify-full',
  'verify-full': 'verify-full'
}

const POSTGRES_SCHEME = /^postgres(?:ql)?(?:\+[a-z0-9_]+)?:\/\//i

/**
 * `postgresql://…` for any PostgreSQL URL, SQLAlchemy dialect prefixes included
 * (`postgresql+psycopg2://`); undefined for anything that is not one.
 */
export function normaliseDatabaseUrl (raw: string): string | undefined {
  const trimmed = raw.trim()
  const match = POSTGRES_SCHEME.exec(trimmed)
  if (!match) return undefined
  const url = 'postgresql://' + trimmed.slice(match[0].length)
  return URL.canParse(url) ? url : undefined
}

/** The URL's own sslmode, or null; an unknown one is reported by config/load.ts. */
export function urlSslMode (url: string): string | null {
  return URL.canParse(url) ? new URL(url).searchParams.get('sslmode') : null
}

/** The SSL mode a connection to `url` uses: the URL's `sslmode` when it has one, else DATABASE_SSL. */
export function effectiveSslMode (url: string, configured: SslMode): SslMode {
  const fromUrl = urlSslMode(url)
  return fromUrl !== null && SSLMODES[fromUrl] !== undefined ? SSLMODES[fromUrl] : configured
}

/** The URL's password, decoded; undefined when the URL cannot be read. */
export function databasePassword (url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password)
  } catch {
    return undefined
  }
}

export interface DatabaseConnection {
  connectionString: string
  ssl: false | ConnectionOptions
  sslMode: SslMode
}

/**
 * Turns DATABASE_URL and DATABASE_SSL into pg options. An `sslmode` in the URL wins
 * over DATABASE_SSL (it is the more specific setting) and is removed from the URL,
 * because pg reads `sslmode=require` as verify-full and would override our choice.
 */
export function databaseConnection (url: string, config: Pick<Config, 'DATABASE_SSL' | 'DATABASE_CA_FILE'>): DatabaseConnection {
  const parsed = new URL(url)
  const mode = effectiveSslMode(url, config.DATABASE_SSL)
  for (const key of ['sslmode', 'ssl', 'sslrootcert', 'sslcert', 'sslkey', 'uselibpqcompat']) parsed.searchParams.delete(key)

  let ssl: DatabaseConnection['ssl'] = false
  if (mode === 'require') {
    // Encrypted, server identity not checked: what libpq calls `require`.
    ssl = { rejectUnauthorized: false }
  } else if (mode === 'verify-full') {
    ssl = { rejectUnauthorized: true }
    if (config.DATABASE_CA_FILE !== undefined) ssl.ca = readFileSync(config.DATABASE_CA_FILE, 'utf8')
  }
  return { connectionString: parsed.toString(), ssl, sslMode: mode }
}
