import { Type, type Static } from 'typebox'

// The configuration as the service uses it, after config/load.ts has resolved
// *_FILE variants, aliases and comma lists. Keys keep the names of the environment
// variables (docs/contract.md, "Configuration") so that an operator can grep for them.
// A `default` here holds in every environment; ENVIRONMENT_DEFAULTS below holds the
// ones that differ between development and production.

const EnvironmentSchema = Type.Union([Type.Literal('development'), Type.Literal('test'), Type.Literal('production')])
const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))
const Port = Type.Integer({ minimum: 1, maximum: 65535 })
// RFC 9110 §5.1 field names: the header names the service reads must be valid ones.
const HeaderName = Type.String({ minLength: 1, pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$' })
/** Milliseconds or a duration such as "1 minute": config/rules.ts checks it parses. */
const Duration = Type.String({ minLength: 1 })

export const ConfigSchema = Type.Object({
  ENVIRONMENT: EnvironmentSchema,
  SECRET_KEY: Type.String({ minLength: 1 }),
  JWT_SECRET_KEY: Type.String({ minLength: 1 }),
  JWT_SECRET_KEY_PREVIOUS: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_SSL: Type.Union([Type.Literal('disable'), Type.Literal('require'), Type.Literal('verify-full')]),
  DATABASE_CA_FILE: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  EMBEDDED_POSTGRES_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 54329 }),
  EMBEDDED_POSTGRES_DIR: Type.String({ minLength: 1, default: '.data/postgres' }),
  JWT_ACCESS_TOKEN_EXPIRES: Type.Integer({ minimum: 1, default: 3600 }),
  JWT_REFRESH_TOKEN_EXPIRES: Type.Integer({ minimum: 1, default: 2_592_000 }),
  JWT_TOKEN_LOCATION: Type.Array(Type.Union([Type.Literal('headers'), Type.Literal('cookies')]), { minItems: 1, maxItems: 2, uniqueItems: true, default: ['headers'] }),
  JWT_HEADER_NAME: Type.String({ ...HeaderName, default: 'Authorization' }),
  JWT_HEADER_TYPE: Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]*$', default: 'Bearer' }),
  JWT_ALGORITHM: Type.Union([Type.Literal('HS256'), Type.Literal('HS384'), Type.Literal('HS512'), Type.Literal('ES256'), Type.Literal('EdDSA')], { default: 'HS256' }),
  // PKCS#8 PEM keys for ES256/EdDSA (config/signing-keys.ts checks them).
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ minLength: 1 })),
  JWT_PRIVATE_KEY_PREVIOUS: Type.Optional(Type.String({ minLength: 1 })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_COOKIE_SECURE: Type.Boolean(),
  JWT_COOKIE_SAMESITE: Type.Union([Type.Literal('Strict'), Type.Literal('Lax'), Type.Literal('None')], { default: 'Lax' }),
  JWT_COOKIE_CSRF_PROTECT: Type.Boolean({ default: true }),
  CORS_ORIGINS: Type.Array(Type.String({ minLength: 1 })),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 100 }),
  RATE_LIMIT_WINDOW: Type.String({ ...Duration, default: '1 minute' }),
  RATE_LIMIT_AUTH_MAX: Type.Integer({ minimum: 1, default: 10 }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_KEY_PREFIX: Type.String({ minLength: 1, maxLength: 100, default: 'secure-fastify-service:' }),
  RATE_LIMIT_REDIS_FALLBACK: Type.Union([Type.Literal('local'), Type.Literal('open')], { default: 'local' }),
  LOGIN_MAX_FAILURES: Type.Integer({ minimum: 1, maximum: 1000, default: 5 }),
  LOGIN_FAILURE_WINDOW: Type.String({ ...Duration, default: '15 minutes' }),
  // `false` first and as a literal: with Type.Boolean() first, coercion turned the
  // hop count 1 into `true` (trust every X-Forwarded-For).
  TRUST_PROXY: Type.Union([Type.Literal(false), Type.Integer({ minimum: 0 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { default: false }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  LOG_LEVEL: Type.Union(LogLevel.anyOf, { default: 'info' }),
  BODY_LIMIT: Type.Integer({ minimum: 1, maximum: 104_857_600, default: 1_048_576 }),
  REQUEST_ID_HEADER: Type.String({ ...HeaderName, default: 'X-Request-ID' }),
  DOCS_ENABLED: Type.Boolean(),
  METRICS_ENABLED: Type.Boolean({ default: true }),
  METRICS_PORT: Type.Optional(Port),
  REGISTRATION_ENABLED: Type.Boolean({ default: true }),
  // Exact issuer URLs that federated service clients may name; unset: any outside production, none in it.
  FEDERATION_ALLOWED_ISSUERS: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  SHUTDOWN_DRAIN_DELAY: Type.Integer({ minimum: 0, maximum: 60_000 }),
  SHUTDOWN_TIMEOUT: Type.Integer({ minimum: 1000, maximum: 600_000, default: 10_000 })
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
export type Environment = Config['ENVIRONMENT']
export type ConfigName = keyof Config

export const ENVIRONMENTS: readonly Environment[] = ['development', 'test', 'production']

/** Every variable the service reads; `X_FILE` is accepted for each of them. */
export const CONFIG_VARIABLES: readonly string[] = [...Object.keys(ConfigSchema.properties), 'SQLALCHEMY_DATABASE_URI']

// Fixed, public development values: production refuses them (config/rules.ts).
export const DEV_SECRET_KEY = 'dev-insecure-secret-key-do-not-use-in-production'
export const DEV_JWT_SECRET_KEY = 'dev-insecure-jwt-secret-key-do-not-use-in-production'

const DEVELOPMENT: Partial<Config> = {
  SECRET_KEY: DEV_SECRET_KEY,
  JWT_SECRET_KEY: DEV_JWT_SECRET_KEY,
  DATABASE_SSL: 'disable',
  JWT_COOKIE_SECURE: false,
  CORS_ORIGINS: ['http://localhost:3000', 'http://127.0.0.1:3000'],
  DOCS_ENABLED: true,
  SHUTDOWN_DRAIN_DELAY: 0
}

/** The defaults that depend on ENVIRONMENT; production has no secrets to fall back on. */
export const ENVIRONMENT_DEFAULTS: Record<Environment, Partial<Config>> = {
  development: DEVELOPMENT,
  test: DEVELOPMENT,
  production: {
    DATABASE_SSL: 'require',
    JWT_COOKIE_SECURE: true,
    CORS_ORIGINS: [],
    DOCS_ENABLED: false,
    // Lets load balancers that do not watch readiness stop routing to us first.
    SHUTDOWN_DRAIN_DELAY: 2000
  }
}

/** The default of `name` in `environment`, typed as the configuration holds it. */
export function defaultOf (name: string, environment: Environment): unknown {
  const own = ENVIRONMENT_DEFAULTS[environment][name as ConfigName]
  if (own !== undefined) return own
  return (ConfigSchema.properties as Record<string, { default?: unknown }>)[name]?.default
}
