import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { parseEnv } from 'node:util'
import envSchema from 'env-schema'
import { ConfigSchema, CONFIG_VARIABLES, type Config } from '../schemas/config.js'
import { durationMs } from './duration.js'
import { effectiveSslMode, SSLMODES } from './database-url.js'

export type { Config }
export type Environment = Config['ENVIRONMENT']
type Source = Record<string, string | undefined>

const ENVIRONMENTS = ['development', 'test', 'production'] as const

// Fixed, public development values: production refuses them (SPEC §1).
export const DEV_SECRET_KEY = 'dev-insecure-secret-key-do-not-use-in-production'
export const DEV_JWT_SECRET_KEY = 'dev-insecure-jwt-secret-key-do-not-use-in-production'
const DEV_SECRETS = new Set([DEV_SECRET_KEY, DEV_JWT_SECRET_KEY])
const WEAK_DB_PASSWORDS = new Set(['', 'password', 'postgres'])
const MIN_SECRET_LENGTH = 32

const COMMON_DEFAULTS: Source = {
  DATABASE_POOL_MAX: '10',
  MIGRATE_ON_START: 'true',
  EMBEDDED_POSTGRES_PORT: '54329',
  EMBEDDED_POSTGRES_DIR: '.data/postgres',
  JWT_ACCESS_TOKEN_EXPIRES: '3600',
  JWT_REFRESH_TOKEN_EXPIRES: '2592000',
  JWT_TOKEN_LOCATION: 'headers',
  JWT_HEADER_NAME: 'Authorization',
  JWT_HEADER_TYPE: 'Bearer',
  JWT_ALGORITHM: 'HS256',
  JWT_COOKIE_SAMESITE: 'Lax',
  JWT_COOKIE_CSRF_PROTECT: 'true',
  RATE_LIMIT_MAX: '100',
  RATE_LIMIT_WINDOW: '1 minute',
  RATE_LIMIT_AUTH_MAX: '10',
  REDIS_KEY_PREFIX: 'secure-fastify-service:',
  TRUST_PROXY: 'false',
  HOST: '127.0.0.1',
  PORT: '3000',
  LOG_LEVEL: 'info',
  BODY_LIMIT: '1048576',
  REQUEST_ID_HEADER: 'X-Request-ID',
  METRICS_ENABLED: 'true',
  REGISTRATION_ENABLED: 'true',
  SHUTDOWN_TIMEOUT: '10000'
}

const DEFAULTS: Record<Environment, Source> = {
  development: {
    ...COMMON_DEFAULTS,
    SECRET_KEY: DEV_SECRET_KEY,
    JWT_SECRET_KEY: DEV_JWT_SECRET_KEY,
    DATABASE_SSL: 'disable',
    JWT_COOKIE_SECURE: 'false',
    CORS_ORIGINS: 'http://localhost:3000,http://127.0.0.1:3000',
    DOCS_ENABLED: 'true',
    SHUTDOWN_DRAIN_DELAY: '0'
  },
  test: {},
  production: {
    ...COMMON_DEFAULTS,
    DATABASE_SSL: 'require',
    JWT_COOKIE_SECURE: 'true',
    CORS_ORIGINS: '',
    DOCS_ENABLED: 'false',
    // Lets load balancers that do not watch readiness stop routing to us first.
    SHUTDOWN_DRAIN_DELAY: '2000'
  }
}
DEFAULTS.test = DEFAULTS.development

// Variables whose empty value means something (an empty list, a bare token).
const EMPTY_IS_A_VALUE = new Set(['JWT_HEADER_TYPE', 'CORS_ORIGINS'])
const REQUIRED_IN_PRODUCTION = ['SECRET_KEY', 'JWT_SECRET_KEY'] as const

export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(`Refusing to start: invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
      problems.map((p) => `  - ${p}`).join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export interface LoadedConfig {
  config: Config
  /** Lines to log once at start (never containing values). */
  warnings: string[]
}

export interface LoadOptions {
  /** Read `.env` from this folder in development (the CLI and server do, tests do not). */
  dotenvDir?: string
}

/**
 * Reads, validates and normalises the whole configuration in one pass, collecting
 * every problem so that an operator fixes them all at once (SPEC §1). Messages name
 * variables, never their values, because start-up logs are widely readable.
 */
export function loadConfig (source: Source = process.env, options: LoadOptions = {}): LoadedConfig {
  const problems: string[] = []
  const warnings: string[] = []

  let environment: Environment = 'development'
  const rawEnvironment = source.ENVIRONMENT?.trim()
  if (rawEnvironment) {
    if ((ENVIRONMENTS as readonly string[]).includes(rawEnvironment)) environment = rawEnvironment as Environment
    else problems.push(`ENVIRONMENT must be one of ${ENVIRONMENTS.join(', ')}`)
  }

  let merged: Source = source
  if (options.dotenvDir !== undefined && environment === 'development') {
    merged = { ...readDotenv(options.dotenvDir, problems), ...source }
  }

  // Variables already reported (both X and X_FILE, an unreadable file, a bad URL):
  // "missing" would only repeat the problem in misleading words.
  const reported = new Set<string>()
  const given = resolveFiles(merged, problems, reported)
  resolveDatabaseUrl(given, problems, reported)

  const production = environment === 'production' && !problems.some((p) => p.startsWith('ENVIRONMENT'))
  if (production) {
    for (const name of REQUIRED_IN_PRODUCTION) {
      if (given[name] === undefined && !reported.has(name)) problems.push(`${name} is required in production and is missing or empty`)
    }
    if (given.DATABASE_URL === undefined && !reported.has('DATABASE_URL')) {
      problems.push('DATABASE_URL (or SQLALCHEMY_DATABASE_URI) is required in production and is missing or empty')
    }
  }

  const data: Record<string, unknown> = { ...DEFAULTS[environment], ...given, ENVIRONMENT: environment }
  for (const name of ['JWT_TOKEN_LOCATION', 'CORS_ORIGINS'] as const) data[name] = splitList(data[name] as string)
  data.TRUST_PROXY = parseTrustProxy(data.TRUST_PROXY as string, problems)
  if (production) {
    // Keep the required-variable messages alone: no defaults stand in for secrets.
    data.SECRET_KEY ??= 'x'
    data.JWT_SECRET_KEY ??= 'x'
  }

  let config: Config | undefined
  // Checked against the rest of the rules even when some variables are invalid, so
  // that one attempt reports every problem (SPEC §1); an invalid variable is
  // replaced by its default for that purpose only.
  let checked: Config | undefined
  try {
    config = envSchema<Config>({ schema: structuredClone(ConfigSchema), data, env: false, dotenv: false })
    checked = config
  } catch (err) {
    const { messages, variables } = schemaProblems(err)
    problems.push(...messages)
    const fallback: Record<string, unknown> = { ...data }
    for (const name of variables) {
      const value = DEFAULTS[environment][name]
      if (value === undefined) delete fallback[name]
      else fallback[name] = name === 'JWT_TOKEN_LOCATION' || name === 'CORS_ORIGINS' ? splitList(value) : value
    }
    try {
      checked = envSchema<Config>({ schema: structuredClone(ConfigSchema), data: fallback, env: false, dotenv: false })
    } catch {
      checked = undefined
    }
  }

  if (checked) {
    problems.push(...ruleProblems(checked))
    if (production) problems.push(...productionProblems(checked, given))
    else if (DEV_SECRETS.has(checked.SECRET_KEY) || DEV_SECRETS.has(checked.JWT_SECRET_KEY)) {
      warnings.push(`insecure development defaults are in use (ENVIRONMENT=${environment}); never expose this instance`)
    }
    if (production && checked.DATABASE_URL !== undefined && effectiveSslMode(checked.DATABASE_URL, checked.DATABASE_SSL) === 'disable') {
      // The URL's sslmode wins over DATABASE_SSL (lib/database-url.ts), so both are looked at.
      warnings.push('database SSL is disabled in production (DATABASE_SSL or sslmode in DATABASE_URL): database traffic is not encrypted')
    }
  }

  if (problems.length > 0 || !config) throw new ConfigError(problems.length > 0 ? problems : ['configuration is invalid'])
  return { config, warnings }
}

function readDotenv (dir: string, problems: string[]): Source {
  let text: string
  try {
    text = readFileSync(`${dir}/.env`, 'utf8')
  } catch {
    return {}
  }
  try {
    return parseEnv(text) as Source
  } catch {
    problems.push('.env cannot be parsed')
    return {}
  }
}

/** Applies `X_FILE` (Docker and Kubernetes secrets) and drops empty values that mean "unset". */
function resolveFiles (source: Source, problems: string[], reported: Set<string>): Source {
  const out: Source = {}
  for (const name of CONFIG_VARIABLES) {
    let value = source[name]
    const file = source[`${name}_FILE`]
    if (file !== undefined && file !== '') {
      if (value !== undefined && value !== '') {
        problems.push(`${name} and ${name}_FILE are both set; set only one`)
        reported.add(name === 'SQLALCHEMY_DATABASE_URI' ? 'DATABASE_URL' : name)
        continue
      }
      try {
        value = readFileSync(file, 'utf8').replace(/\r?\n$/, '')
      } catch {
        problems.push(`${name}_FILE names a file that cannot be read`)
        reported.add(name === 'SQLALCHEMY_DATABASE_URI' ? 'DATABASE_URL' : name)
        continue
      }
    }
    if (value === undefined) continue
    if (value === '' && !EMPTY_IS_A_VALUE.has(name)) continue
    out[name] = value
  }
  return out
}

/** Accepts SQLAlchemy-style URLs from the Flask service and normalises them to `postgresql://`. */
function resolveDatabaseUrl (given: Source, problems: string[], reported: Set<string>): void {
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
  if (urls.length === 2 && urls[0] !== urls[1]) {
    problems.push('SQLALCHEMY_DATABASE_URI and DATABASE_URL are both set and differ; set only one')
  }
  if (urls.length > 0) given.DATABASE_URL = urls[0]
  else delete given.DATABASE_URL
  const sslmode = urls[0] === undefined ? null : new URL(urls[0]).searchParams.get('sslmode')
  if (sslmode !== null && !Object.hasOwn(SSLMODES, sslmode)) {
    // An unknown sslmode would otherwise be ignored silently, and SSL with it.
    problems.push(`DATABASE_URL has an sslmode outside its allowed set (${Object.keys(SSLMODES).join(', ')})`)
  }
}

export function normaliseDatabaseUrl (raw: string): string | undefined {
  const match = /^postgres(?:ql)?(?:\+[a-z0-9_]+)?:\/\//i.exec(raw.trim())
  if (!match) return undefined
  const url = 'postgresql://' + raw.trim().slice(match[0].length)
  try {
    // eslint-disable-next-line no-new
    new URL(url)
  } catch {
    return undefined
  }
  return url
}

function splitList (value: string | undefined): string[] {
  if (value === undefined) return []
  return value.split(',').map((v) => v.trim()).filter((v) => v !== '')
}

const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal'])

function parseTrustProxy (value: string, problems: string[]): boolean | number | string[] {
  const v = value.trim()
  if (v === 'false') return false
  if (/^\d+$/.test(v)) return Number(v)
  const list = splitList(v)
  const bad = list.filter((entry) => !isAddressOrCidr(entry) && !PROXY_KEYWORDS.has(entry))
  if (list.length === 0 || bad.length > 0) {
    // `true` would trust any X-Forwarded-For: a client could pick its own rate-limit key.
    problems.push('TRUST_PROXY must be false, a hop count, or a comma list of addresses or CIDRs')
    return false
  }
  return list
}

function isAddressOrCidr (entry: string): boolean {
  const [address, bits, ...rest] = entry.split('/')
  if (rest.length > 0 || address === undefined) return false
  const family = isIP(address)
  if (family === 0) return false
  if (bits === undefined) return true
  if (!/^\d+$/.test(bits)) return false
  return Number(bits) <= (family === 4 ? 32 : 128)
}

/** One message per variable; for a set of allowed values the set is named (never the value given). */
function schemaProblems (err: unknown): { messages: string[], variables: string[] } {
  const errors = (err as { errors?: Array<{ instancePath: string, keyword?: string, message?: string, params?: Record<string, unknown> }> }).errors
  if (!errors) return { messages: ['configuration is invalid'], variables: [] }
  const byVariable = new Map<string, { message: string, allowed: string[] }>()
  for (const e of errors) {
    const name = e.instancePath.split('/')[1] ?? String(e.params?.missingProperty ?? e.params?.additionalProperty ?? 'configuration')
    let entry = byVariable.get(name)
    if (!entry) {
      entry = { message: e.message ?? 'invalid', allowed: [] }
      byVariable.set(name, entry)
    }
    if (e.keyword === 'const' && e.params?.allowedValue !== undefined) {
      const allowed = String(e.params.allowedValue)
      if (!entry.allowed.includes(allowed)) entry.allowed.push(allowed)
    }
  }
  const messages = [...byVariable].map(([name, { message, allowed }]) => allowed.length > 0
    ? `${name} has a value outside its allowed set (${allowed.join(', ')})`
    : `${name} has a value of the wrong type or outside its allowed set (${message})`)
  return { messages, variables: [...byVariable.keys()] }
}

function isOrigin (value: string): boolean {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return false
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value
}

/** Rules that hold in every environment: they guard against configurations no deployment wants. */
function ruleProblems (config: Config): string[] {
  const problems: string[] = []
  const cookies = config.JWT_TOKEN_LOCATION.includes('cookies')
  if (config.CORS_ORIGINS.includes('*')) {
    if (cookies) problems.push('CORS_ORIGINS must not hold * while cookies are a token location (JWT_TOKEN_LOCATION)')
  }
  if (config.CORS_ORIGINS.some((o) => o !== '*' && !isOrigin(o))) {
    problems.push('CORS_ORIGINS must be a comma list of exact origins (scheme://host[:port], no path or trailing slash)')
  }
  if (durationMs(config.RATE_LIMIT_WINDOW) < 1) {
    // A zero window expires every counter at once: no limit at all.
    problems.push('RATE_LIMIT_WINDOW must be at least 1 millisecond')
  }
  if (config.JWT_COOKIE_SAMESITE === 'None' && !config.JWT_COOKIE_SECURE) {
    problems.push('JWT_COOKIE_SAMESITE=None requires JWT_COOKIE_SECURE=true')
  }
  if (config.DATABASE_SSL === 'verify-full' && config.DATABASE_CA_FILE !== undefined) {
    try {
      readFileSync(config.DATABASE_CA_FILE)
    } catch {
      problems.push('DATABASE_CA_FILE names a file that cannot be read')
    }
  }
  if (config.METRICS_PORT !== undefined && config.METRICS_PORT === config.PORT) {
    problems.push('METRICS_PORT must differ from PORT')
  }
  return problems
}

function productionProblems (config: Config, given: Source): string[] {
  const problems: string[] = []
  const secrets = ['SECRET_KEY', 'JWT_SECRET_KEY', 'JWT_SECRET_KEY_PREVIOUS'] as const
  for (const name of secrets) {
    const value = given[name]
    if (value === undefined) continue
    if (value.length < MIN_SECRET_LENGTH) problems.push(`${name} must be at least ${MIN_SECRET_LENGTH} characters`)
    else if (DEV_SECRETS.has(value)) problems.push(`${name} equals a development default`)
  }
  if (given.SECRET_KEY !== undefined && given.SECRET_KEY === given.JWT_SECRET_KEY) {
    problems.push('SECRET_KEY and JWT_SECRET_KEY must differ')
  }
  if (config.JWT_SECRET_KEY_PREVIOUS !== undefined && config.JWT_SECRET_KEY_PREVIOUS === given.JWT_SECRET_KEY) {
    problems.push('JWT_SECRET_KEY_PREVIOUS must differ from JWT_SECRET_KEY')
  }
  if (config.DATABASE_URL !== undefined) {
    let password: string | undefined
    try {
      password = decodeURIComponent(new URL(config.DATABASE_URL).password)
    } catch {
      password = undefined
    }
    if (password === undefined || WEAK_DB_PASSWORDS.has(password)) {
      problems.push('DATABASE_URL has an empty or well-known password')
    }
  }
  return problems
}

/**
 * For entry points: the configuration, or one message listing every problem on
 * stderr and exit code 78 (EX_CONFIG) before anything listens.
 */
export function loadConfigOrExit (source: Source = process.env): LoadedConfig {
  try {
    return loadConfig(source, { dotenvDir: process.cwd() })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(err.message + '\n')
    process.exit(78)
  }
}
