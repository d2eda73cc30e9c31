import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import type { Config } from './config.js'

type SslMode = Config['DATABASE_SSL']
/** libpq's sslmode values and the DATABASE_SSL mode each one means here. */
export const SSLMODES: Record<string, SslMode> = {
  disable: 'disable',
  allow: 'disable',
  prefer: 'require',
  require: 'require',
  'verify-ca': 'verify-full',
  'verify-full': 'verify-full'
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

/** The SSL mode a connection to `url` uses: the URL's `sslmode` when it has one, else DATABASE_SSL. */
export function effectiveSslMode (url: string, configured: SslMode): SslMode {
  let fromUrl: string | null = null
  try {
    fromUrl = new URL(url).searchParams.get('sslmode')
  } catch {
    return configured
  }
  return fromUrl !== null && SSLMODES[fromUrl] !== undefined ? SSLMODES[fromUrl] : configured
}
