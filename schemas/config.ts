import { Type, type Static } from 'typebox'

// The configuration after lib/config.ts has resolved *_FILE variants, aliases,
// comma lists and the defaults of the chosen ENVIRONMENT. Keys keep the names of
// the environment variables (SPEC §1) so that an operator can grep for them.

const Environment = Type.Union([Type.Literal('development'), Type.Literal('test'), Type.Literal('production')])
const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))
const Port = Type.Integer({ minimum: 1, maximum: 65535 })
const Duration = Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)?\\s*$' })

export const ConfigSchema = Type.Object({
  ENVIRONMENT: Environment,
  SECRET_KEY: Type.String({ minLength: 1 }),
  JWT_SECRET_KEY: Type.String({ minLength: 1 }),
  JWT_SECRET_KEY_PREVIOUS: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_SSL: Type.Union([Type.Literal('disable'), Type.Literal('require'), Type.Literal('verify-full')]),
  DATABASE_CA_FILE: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000 }),
  MIGRATE_ON_START: Type.Boolean(),
  EMBEDDED_POSTGRES_PORT: Port,
  EMBEDDED_POSTGRES_DIR: Type.String({ minLength: 1 }),
  JWT_ACCESS_TOKEN_EXPIRES: Type.Integer({ minimum: 1 }),
  JWT_REFRESH_TOKEN_EXPIRES: Type.Integer({ minimum: 1 }),
  JWT_TOKEN_LOCATION: Type.Array(Type.Union([Type.Literal('headers'), Type.Literal('cookies')]), { minItems: 1, maxItems: 2, uniqueItems: true }),
  JWT_HEADER_NAME: Type.String({ minLength: 1, pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$' }),
  JWT_HEADER_TYPE: Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]*$' }),
  JWT_ALGORITHM: Type.Union([Type.Literal('HS256'), Type.Literal('HS384'), Type.Literal('HS512')]),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_COOKIE_SECURE: Type.Boolean(),
  JWT_COOKIE_SAMESITE: Type.Union([Type.Literal('Strict'), Type.Literal('Lax'), Type.Literal('None')]),
  JWT_COOKIE_CSRF_PROTECT: Type.Boolean(),
  CORS_ORIGINS: Type.Array(Type.String({ minLength: 1 })),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1 }),
  RATE_LIMIT_WINDOW: Duration,
  RATE_LIMIT_AUTH_MAX: Type.Integer({ minimum: 1 }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_KEY_PREFIX: Type.String({ minLength: 1, maxLength: 100 }),
  // `false` first and as a literal: with Type.Boolean() first, ajv's coercion turned
  // the hop count 1 into `true` (trust every X-Forwarded-For).
  TRUST_PROXY: Type.Union([Type.Literal(false), Type.Integer({ minimum: 0 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
  HOST: Type.String({ minLength: 1 }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535 }),
  LOG_LEVEL: LogLevel,
  BODY_LIMIT: Type.Integer({ minimum: 1, maximum: 104857600 }),
  REQUEST_ID_HEADER: Type.String({ minLength: 1, pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$' }),
  DOCS_ENABLED: Type.Boolean(),
  METRICS_ENABLED: Type.Boolean(),
  METRICS_PORT: Type.Optional(Port),
  REGISTRATION_ENABLED: Type.Boolean(),
  SHUTDOWN_DRAIN_DELAY: Type.Integer({ minimum: 0, maximum: 60000 }),
  SHUTDOWN_TIMEOUT: Type.Integer({ minimum: 1000, maximum: 600000 })
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>

/** Every variable the service reads; `X_FILE` is accepted for each of them. */
export const CONFIG_VARIABLES = [...Object.keys(ConfigSchema.properties), 'SQLALCHEMY_DATABASE_URI'] as const
