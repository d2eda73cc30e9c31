import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import type { Config } from './config.js'

type SslMode = Config['DATABASE_SSL']
const SSLMODES: Record<string, SslMode> = {
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
  let mode = config.DATABASE_SSL
  const fromUrl = parsed.searchParams.get('sslmode')
  if (fromUrl !== null && SSLMODES[fromUrl] !== undefined) mode = SSLMODES[fromUrl]
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
