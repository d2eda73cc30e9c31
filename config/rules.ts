import { readFileSync } from 'node:fs'
import { parse as parseDuration } from '@lukeed/ms'
import { databasePassword, effectiveSslMode } from './database-url.js'
import { DEV_JWT_SECRET_KEY, DEV_SECRET_KEY, type Config } from './schema.js'
import { algorithmOfKey, isAsymmetric, parsePrivateKey, signingKeyProblem } from './signing-keys.js'

// Rules that a schema cannot express: relations between variables, and what
// production demands (docs/contract.md, "Configuration"). Messages name variables,
// never their values, because start-up output is widely readable.

const DEV_SECRETS = new Set([DEV_SECRET_KEY, DEV_JWT_SECRET_KEY])
const WEAK_DB_PASSWORDS = new Set(['', 'password', 'postgres'])
const MIN_SECRET_LENGTH = 32
export const REQUIRED_IN_PRODUCTION = ['SECRET_KEY', 'JWT_SECRET_KEY'] as const

/** The secrets production requires: with ES256/EdDSA the private key replaces JWT_SECRET_KEY. */
export function requiredInProduction (given: Readonly<Record<string, string | undefined>>): string[] {
  return ['SECRET_KEY', isAsymmetric(given.JWT_ALGORITHM?.trim()) ? 'JWT_PRIVATE_KEY' : 'JWT_SECRET_KEY']
}

/** An issuer identifier (RFC 8414 §2): an absolute http(s) URL without query, fragment or credentials. */
export function isIssuerUrl (value: string): boolean {
  if (!URL.canParse(value) || value.includes('?') || value.includes('#')) return false
  const url = new URL(value)
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === ''
}

/** Milliseconds of a duration ("60000", "1 minute", "2 seconds"), or undefined when it is not one. */
export function durationMs (value: string): number | undefined {
  const trimmed = value.trim()
  // @lukeed/ms reads "0" as nothing; a zero window is refused as too short instead.
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const ms = parseDuration(trimmed)
  return ms !== undefined && Number.isFinite(ms) ? Math.round(ms) : undefined
}

function isOrigin (value: string): boolean {
  if (!URL.canParse(value)) return false
  const url = new URL(value)
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value
}

/**
 * Rules that hold in every environment: they refuse configurations no deployment
 * wants. `invalid` names variables the schema already refused: rules about them
 * would only repeat the problem in other words.
 */
export function ruleProblems (config: Config, invalid: ReadonlySet<string>): string[] {
  const problems: string[] = []
  const ok = (...names: string[]) => names.every((name) => !invalid.has(name))
  if (ok('CORS_ORIGINS', 'JWT_TOKEN_LOCATION') && config.CORS_ORIGINS.includes('*') && config.JWT_TOKEN_LOCATION.includes('cookies')) {
    problems.push('CORS_ORIGINS must not hold * while cookies are a token location (JWT_TOKEN_LOCATION)')
  }
  if (ok('CORS_ORIGINS') && config.CORS_ORIGINS.some((o) => o !== '*' && !isOrigin(o))) {
    problems.push('CORS_ORIGINS must be a comma list of exact origins (scheme://host[:port], no path or trailing slash)')
  }
  const window = durationMs(config.RATE_LIMIT_WINDOW)
  // A zero window expires every counter at once: no limit at all.
  if (ok('RATE_LIMIT_WINDOW') && window === undefined) {
    problems.push('RATE_LIMIT_WINDOW must be milliseconds or a duration such as "1 minute"')
  } else if (ok('RATE_LIMIT_WINDOW') && window !== undefined && window < 1) {
    problems.push('RATE_LIMIT_WINDOW must be at least 1 millisecond')
  }
  const loginWindow = durationMs(config.LOGIN_FAILURE_WINDOW)
  // Counted in whole seconds (Retry-After), stored per window: under a second is no throttle.
  if (ok('LOGIN_FAILURE_WINDOW') && (loginWindow === undefined || loginWindow < 1000)) {
    problems.push('LOGIN_FAILURE_WINDOW must be a duration of at least 1 second, such as "15 minutes"')
  }
  if (ok('JWT_COOKIE_SAMESITE', 'JWT_COOKIE_SECURE') && config.JWT_COOKIE_SAMESITE === 'None' && !config.JWT_COOKIE_SECURE) {
    problems.push('JWT_COOKIE_SAMESITE=None requires JWT_COOKIE_SECURE=true')
  }
  if (config.DATABASE_SSL === 'verify-full' && config.DATABASE_CA_FILE !== undefined) {
    try {
      readFileSync(config.DATABASE_CA_FILE)
    } catch {
      problems.push('DATABASE_CA_FILE names a file that cannot be read')
    }
  }
  if (ok('METRICS_PORT', 'PORT') && config.METRICS_PORT !== undefined && config.METRICS_PORT === config.PORT) {
    problems.push('METRICS_PORT must differ from PORT')
  }
  problems.push(...signingKeyProblems(config, ok('JWT_ALGORITHM')))
  if (ok('FEDERATION_ALLOWED_ISSUERS') && config.FEDERATION_ALLOWED_ISSUERS?.some((i) => !isIssuerUrl(i))) {
    problems.push('FEDERATION_ALLOWED_ISSUERS must be a comma list of issuer URLs (http(s)://host[/path], no query or fragment)')
  }
  return problems
}

/** A private key set must be one the algorithm can use, in every environment: a broken key never signs. */
function signingKeyProblems (config: Config, algorithmValid: boolean): string[] {
  if (!algorithmValid) return []
  const problems: string[] = []
  const algorithm = config.JWT_ALGORITHM
  if (!isAsymmetric(algorithm)) {
    for (const name of ['JWT_PRIVATE_KEY', 'JWT_PRIVATE_KEY_PREVIOUS'] as const) {
      if (config[name] !== undefined) problems.push(`${name} is only used with JWT_ALGORITHM=ES256 or EdDSA`)
    }
    return problems
  }
  const current = config.JWT_PRIVATE_KEY !== undefined ? signingKeyProblem('JWT_PRIVATE_KEY', config.JWT_PRIVATE_KEY, algorithm) : undefined
  if (current !== undefined) problems.push(current)
  // The key being rotated out may be of the other asymmetric algorithm (ES256 → EdDSA is a rotation too).
  const previous = config.JWT_PRIVATE_KEY_PREVIOUS !== undefined ? parsePrivateKey(config.JWT_PRIVATE_KEY_PREVIOUS) : undefined
  if (config.JWT_PRIVATE_KEY_PREVIOUS !== undefined && (previous === undefined || algorithmOfKey(previous) === undefined)) {
    problems.push('JWT_PRIVATE_KEY_PREVIOUS must be an unencrypted PKCS#8 PEM private key (P-256 or Ed25519)')
  }
  return problems
}

/** What production demands beyond the schema; `given` holds only what the operator set. */
export function productionProblems (config: Config, given: Readonly<Record<string, string | undefined>>): string[] {
  const problems: string[] = []
  // With ES256/EdDSA the HMAC keys are not used: a leftover one is no weakness.
  const hmac = !isAsymmetric(config.JWT_ALGORITHM)
  for (const name of ['SECRET_KEY', 'JWT_SECRET_KEY', 'JWT_SECRET_KEY_PREVIOUS'] as const) {
    const value = given[name]
    if (value === undefined || (!hmac && name !== 'SECRET_KEY')) continue
    if (value.length < MIN_SECRET_LENGTH) problems.push(`${name} must be at least ${MIN_SECRET_LENGTH} characters`)
    else if (DEV_SECRETS.has(value)) problems.push(`${name} equals a development default`)
  }
  if (hmac && given.SECRET_KEY !== undefined && given.SECRET_KEY === given.JWT_SECRET_KEY) {
    problems.push('SECRET_KEY and JWT_SECRET_KEY must differ')
  }
  if (hmac && config.JWT_SECRET_KEY_PREVIOUS !== undefined && config.JWT_SECRET_KEY_PREVIOUS === given.JWT_SECRET_KEY) {
    problems.push('JWT_SECRET_KEY_PREVIOUS must differ from JWT_SECRET_KEY')
  }
  if (config.JWT_PRIVATE_KEY_PREVIOUS !== undefined && config.JWT_PRIVATE_KEY_PREVIOUS === config.JWT_PRIVATE_KEY) {
    problems.push('JWT_PRIVATE_KEY_PREVIOUS must differ from JWT_PRIVATE_KEY')
  }
  if (config.JWT_ISSUER !== undefined && !isIssuerUrl(config.JWT_ISSUER)) {
    problems.push('JWT_ISSUER must be an absolute http(s) URL without query or fragment')
  }
  if (config.FEDERATION_ALLOWED_ISSUERS?.some((i) => !i.startsWith('https://'))) {
    problems.push('FEDERATION_ALLOWED_ISSUERS must hold https:// issuers only (keys are fetched from them)')
  }
  if (config.DATABASE_URL !== undefined) {
    const password = databasePassword(config.DATABASE_URL)
    if (password === undefined || WEAK_DB_PASSWORDS.has(password)) problems.push('DATABASE_URL has an empty or well-known password')
  }
  return problems
}

/** Lines to log once at start (never holding values). */
export function configWarnings (config: Config): string[] {
  const warnings: string[] = []
  if (config.ENVIRONMENT !== 'production' && (DEV_SECRETS.has(config.SECRET_KEY) || DEV_SECRETS.has(config.JWT_SECRET_KEY))) {
    warnings.push(`insecure development defaults are in use (ENVIRONMENT=${config.ENVIRONMENT}); never expose this instance`)
  }
  if (config.ENVIRONMENT !== 'production' && config.JWT_ISSUER !== undefined && !isIssuerUrl(config.JWT_ISSUER)) {
    warnings.push('JWT_ISSUER is not an absolute http(s) URL: the authorization server metadata is not served, and production would refuse it')
  }
  // The URL's sslmode wins over DATABASE_SSL (config/database-url.ts), so both are looked at.
  if (config.ENVIRONMENT === 'production' && config.DATABASE_URL !== undefined && effectiveSslMode(config.DATABASE_URL, config.DATABASE_SSL) === 'disable') {
    warnings.push('database SSL is disabled in production (DATABASE_SSL or sslmode in DATABASE_URL): database traffic is not encrypted')
  }
  return warnings
}
