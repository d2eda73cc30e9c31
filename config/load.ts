import { Ajv, type ErrorObject } from 'ajv'
import proxyAddr from '@fastify/proxy-addr'
import { configWarnings, productionProblems, REQUIRED_IN_PRODUCTION, requiredInProduction, ruleProblems } from './rules.js'
import { ConfigSchema, defaultOf, ENVIRONMENTS, type Config, type Environment } from './schema.js'
import { readDotenv, resolveDatabaseUrl, resolveFiles, splitList, type Source } from './sources.js'
import { unknownVariableWarnings } from './unknown-variables.js'

const LISTS = ['JWT_TOKEN_LOCATION', 'CORS_ORIGINS', 'FEDERATION_ALLOWED_ISSUERS'] as const

// Environment variables are text: numbers and booleans are coerced, every error is collected.
const validate = new Ajv({ allErrors: true, coerceTypes: true, strict: false }).compile(ConfigSchema)

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
  /** Read `.env` from this folder in development (the entry points do, tests do not). */
  dotenvDir?: string
}

/**
 * Reads, validates and normalises the whole configuration in one pass, collecting
 * every problem so that an operator fixes them all at once. Pure but for the files
 * that `.env` and X_FILE name: it never reads process.env unless given it.
 */
export function loadConfig (source: Source = process.env, options: LoadOptions = {}): LoadedConfig {
  const problems: string[] = []

  let environment: Environment = 'development'
  const rawEnvironment = source.ENVIRONMENT?.trim()
  const environmentValid = !rawEnvironment || (ENVIRONMENTS as readonly string[]).includes(rawEnvironment)
  if (!environmentValid) problems.push(`ENVIRONMENT must be one of ${ENVIRONMENTS.join(', ')}`)
  else if (rawEnvironment) environment = rawEnvironment as Environment
  const production = environment === 'production'

  const merged = options.dotenvDir !== undefined && environment === 'development'
    ? { ...readDotenv(options.dotenvDir, problems), ...source }
    : source

  // Variables already reported (both X and X_FILE, an unreadable file, a bad URL):
  // "missing" would only repeat the problem in misleading words.
  const reported = new Set<string>()
  const given = resolveFiles(merged, problems, reported)
  resolveDatabaseUrl(given, problems, reported)

  if (production) {
    for (const name of requiredInProduction(given)) {
      if (given[name] === undefined && !reported.has(name)) problems.push(`${name} is required in production and is missing or empty`)
    }
    if (given.DATABASE_URL === undefined && !reported.has('DATABASE_URL')) {
      problems.push('DATABASE_URL (or SQLALCHEMY_DATABASE_URI) is required in production and is missing or empty')
    }
  }

  const data: Record<string, unknown> = { ...defaults(environment), ...given, ENVIRONMENT: environment }
  for (const name of LISTS) if (typeof data[name] === 'string') data[name] = splitList(data[name])
  if (typeof data.TRUST_PROXY === 'string') data.TRUST_PROXY = parseTrustProxy(data.TRUST_PROXY, problems, reported)
  // No default stands in for a secret in production: the messages above say it is missing.
  if (production) for (const name of REQUIRED_IN_PRODUCTION) data[name] ??= 'x'

  const invalid = new Set(reported)
  if (!validate(data)) {
    const { messages, variables } = schemaProblems(validate.errors ?? [])
    problems.push(...messages)
    // The rules below still run, on the defaults of the refused variables, so that
    // one attempt reports every problem.
    for (const name of variables) {
      invalid.add(name)
      const fallback = defaultOf(name, environment)
      if (fallback === undefined) delete data[name]
      else data[name] = structuredClone(fallback)
    }
  }
  const config = data as Config
  problems.push(...ruleProblems(config, invalid))
  if (production && environmentValid) problems.push(...productionProblems(config, given))

  if (problems.length > 0) throw new ConfigError(problems)
  return { config, warnings: [...configWarnings(config), ...unknownVariableWarnings(merged)] }
}

/**
 * For entry points only: the configuration, or one message listing every problem on
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

function defaults (environment: Environment): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const name of Object.keys(ConfigSchema.properties)) {
    const value = defaultOf(name, environment)
    if (value !== undefined) out[name] = structuredClone(value)
  }
  return out
}

/** false, a hop count, or addresses/CIDRs as proxy-addr (Fastify's own) reads them; never `true`. */
function parseTrustProxy (value: string, problems: string[], reported: Set<string>): false | number | string[] {
  const v = value.trim()
  if (v === 'false') return false
  if (/^\d+$/.test(v)) return Number(v)
  const list = splitList(v)
  let valid = list.length > 0 && !list.includes('true')
  try {
    proxyAddr.compile(list)
  } catch {
    valid = false
  }
  if (!valid) {
    // `true` would trust any X-Forwarded-For: a client could pick its own rate-limit key.
    problems.push('TRUST_PROXY must be false, a hop count, or a comma list of addresses or CIDRs')
    reported.add('TRUST_PROXY')
    return false
  }
  return list
}

/** One message per variable; for a set of allowed values the set is named (never the value given). */
function schemaProblems (errors: ErrorObject[]): { messages: string[], variables: string[] } {
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
