import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../../config/load.js'
import { problemsOf } from '../fixtures/config-problems.js'
import { durationMs } from '../../config/rules.js'
import { DEV_JWT_SECRET_KEY, DEV_SECRET_KEY } from '../../config/schema.js'

// loadConfig is pure (no process.env, no files unless X_FILE names one), so every
// rule of docs/contract.md's configuration is checked here directly; test/e2e/config-refusal.test.ts checks
// that the real entry point refuses to start with the same message.

const SECRET = 'a'.repeat(40)
const JWT_SECRET = 'b'.repeat(40)
const GOOD_PRODUCTION = {
  ENVIRONMENT: 'production',
  SECRET_KEY: SECRET,
  JWT_SECRET_KEY: JWT_SECRET,
  DATABASE_URL: 'postgresql://app:a-strong-database-password@db.internal:5432/app'
}

function messageOf (env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  return ''
}

const tempDir = mkdtempSync(join(tmpdir(), 'config-test-'))
function file (name: string, content: string): string {
  const path = join(tempDir, name)
  writeFileSync(path, content)
  return path
}

t.test('production refuses missing SECRET_KEY, JWT_SECRET_KEY and DATABASE_URL in one message naming all three', async (t) => {
  const message = messageOf({ ENVIRONMENT: 'production' })
  t.match(message, /^Refusing to start/)
  t.equal(message.match(/Refusing to start/g)?.length, 1, 'one message')
  for (const name of ['SECRET_KEY', 'JWT_SECRET_KEY', 'DATABASE_URL']) {
    t.ok(message.split('\n').some((line) => line.includes(`- ${name}`) && /required/.test(line)), `names ${name}`)
  }
  t.equal(problemsOf(t, { ENVIRONMENT: 'production' }).length, 3)
})

t.test('production treats an empty secret as missing', async (t) => {
  const problems = problemsOf(t, { ...GOOD_PRODUCTION, SECRET_KEY: '', JWT_SECRET_KEY: '' })
  t.equal(problems.length, 2)
  t.ok(problems.every((p) => /missing or empty/.test(p)))
})

t.test('production accepts strong secrets and a database URL with a real password', async (t) => {
  const { config, warnings } = loadConfig(GOOD_PRODUCTION)
  t.equal(config.ENVIRONMENT, 'production')
  t.equal(config.DATABASE_SSL, 'require', 'SSL required by default in production')
  t.equal(config.JWT_COOKIE_SECURE, true)
  t.same(config.CORS_ORIGINS, [], 'no cross-origin access by default')
  t.equal(config.DOCS_ENABLED, false)
  t.same(warnings, [])
})

t.test('production refuses secrets shorter than 32 characters', async (t) => {
  const problems = problemsOf(t, { ...GOOD_PRODUCTION, SECRET_KEY: 'x'.repeat(31), JWT_SECRET_KEY: 'y'.repeat(10), JWT_SECRET_KEY_PREVIOUS: 'z'.repeat(31) })
  for (const name of ['SECRET_KEY', 'JWT_SECRET_KEY', 'JWT_SECRET_KEY_PREVIOUS']) {
    t.ok(problems.some((p) => p.startsWith(`${name} must be at least 32`)), name)
  }
  t.same(loadConfig({ ...GOOD_PRODUCTION, SECRET_KEY: 'x'.repeat(32) }).warnings, [], '32 characters is enough')
})

t.test('production refuses the development default secrets', async (t) => {
  const problems = problemsOf(t, { ...GOOD_PRODUCTION, SECRET_KEY: DEV_JWT_SECRET_KEY, JWT_SECRET_KEY: DEV_SECRET_KEY })
  t.ok(problems.some((p) => p === 'SECRET_KEY equals a development default'))
  t.ok(problems.some((p) => p === 'JWT_SECRET_KEY equals a development default'))
  const previous = problemsOf(t, { ...GOOD_PRODUCTION, JWT_SECRET_KEY_PREVIOUS: DEV_JWT_SECRET_KEY })
  t.same(previous, ['JWT_SECRET_KEY_PREVIOUS equals a development default'])
})

t.test('production refuses SECRET_KEY equal to JWT_SECRET_KEY', async (t) => {
  t.same(problemsOf(t, { ...GOOD_PRODUCTION, JWT_SECRET_KEY: SECRET }), ['SECRET_KEY and JWT_SECRET_KEY must differ'])
})

t.test('production refuses JWT_SECRET_KEY_PREVIOUS equal to JWT_SECRET_KEY', async (t) => {
  t.same(problemsOf(t, { ...GOOD_PRODUCTION, JWT_SECRET_KEY_PREVIOUS: JWT_SECRET }), ['JWT_SECRET_KEY_PREVIOUS must differ from JWT_SECRET_KEY'])
})

t.test('production refuses a database password that is password, postgres or empty', async (t) => {
  for (const url of [
    'postgresql://app:password@db:5432/app',
    'postgresql://app:postgres@db:5432/app',
    'postgresql://app:@db:5432/app',
    'postgresql://app@db:5432/app',
    'postgresql://db:5432/app',
    'postgresql://app:p%61ssword@db:5432/app'
  ]) {
    t.same(problemsOf(t, { ...GOOD_PRODUCTION, DATABASE_URL: url }), ['DATABASE_URL has an empty or well-known password'], url)
  }
})

t.test('development accepts a weak database password', async (t) => {
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1/app' }).config.DATABASE_URL, 'postgresql://postgres:postgres@127.0.0.1/app')
})

t.test('refuses CORS_ORIGINS * while cookies are a token location', async (t) => {
  for (const env of [{}, GOOD_PRODUCTION]) {
    const problems = problemsOf(t, { ...env, CORS_ORIGINS: '*', JWT_TOKEN_LOCATION: 'headers,cookies', JWT_COOKIE_SECURE: 'true' })
    t.same(problems, ['CORS_ORIGINS must not hold * while cookies are a token location (JWT_TOKEN_LOCATION)'])
  }
  t.same(loadConfig({ CORS_ORIGINS: '*' }).config.CORS_ORIGINS, ['*'], '* is allowed when tokens travel only in headers')
})

t.test('refuses CORS_ORIGINS values that are not origins', async (t) => {
  for (const value of ['http://app.example.com/', 'app.example.com', 'https://app.example.com/path', 'ftp://app.example.com', 'null', 'https://user@app.example.com', 'http://a.example.com,https://b.example.com?x=1']) {
    t.same(problemsOf(t, { CORS_ORIGINS: value }), ['CORS_ORIGINS must be a comma list of exact origins (scheme://host[:port], no path or trailing slash)'], value)
  }
  t.same(loadConfig({ CORS_ORIGINS: ' https://a.example.com , http://localhost:8080 ' }).config.CORS_ORIGINS,
    ['https://a.example.com', 'http://localhost:8080'])
  t.same(loadConfig({ CORS_ORIGINS: '' }).config.CORS_ORIGINS, [], 'empty means no origin')
})

t.test('refuses JWT_COOKIE_SAMESITE=None without secure cookies', async (t) => {
  t.same(problemsOf(t, { JWT_COOKIE_SAMESITE: 'None' }), ['JWT_COOKIE_SAMESITE=None requires JWT_COOKIE_SECURE=true'])
  t.same(problemsOf(t, { ...GOOD_PRODUCTION, JWT_COOKIE_SAMESITE: 'None', JWT_COOKIE_SECURE: 'false' }), ['JWT_COOKIE_SAMESITE=None requires JWT_COOKIE_SECURE=true'])
  t.equal(loadConfig({ JWT_COOKIE_SAMESITE: 'None', JWT_COOKIE_SECURE: 'true' }).config.JWT_COOKIE_SAMESITE, 'None')
  t.equal(loadConfig({ ...GOOD_PRODUCTION, JWT_COOKIE_SAMESITE: 'None' }).config.JWT_COOKIE_SECURE, true, 'production cookies are secure by default')
})

t.test('refuses values of the wrong type or outside their allowed set, naming each variable', async (t) => {
  const bad: Record<string, string> = {
    PORT: 'abc',
    DATABASE_POOL_MAX: '0',
    BODY_LIMIT: '1.5',
    JWT_ALGORITHM: 'RS256',
    LOG_LEVEL: 'verbose',
    DOCS_ENABLED: 'yes',
    JWT_TOKEN_LOCATION: 'headers,query',
    JWT_COOKIE_SAMESITE: 'lax-ish',
    DATABASE_SSL: 'prefer',
    RATE_LIMIT_WINDOW: 'forever',
    REDIS_URL: 'http://redis:6379',
    JWT_ACCESS_TOKEN_EXPIRES: '-1',
    REQUEST_ID_HEADER: 'X Request Id',
    JWT_HEADER_NAME: 'Bad:Header',
    TRUST_PROXY: 'true',
    METRICS_PORT: '99999'
  }
  const problems = problemsOf(t, bad)
  for (const name of Object.keys(bad)) {
    t.equal(problems.filter((p) => p.startsWith(`${name} `)).length, 1, `one problem names ${name}`)
  }
  t.equal(problems.length, Object.keys(bad).length)
  t.ok(problems.includes('JWT_ALGORITHM has a value outside its allowed set (HS256, HS384, HS512, ES256, EdDSA)'), 'an allowed set is listed')
})

t.test('TRUST_PROXY takes false, a hop count or addresses and CIDRs, never true', async (t) => {
  t.equal(loadConfig({ TRUST_PROXY: 'false' }).config.TRUST_PROXY, false)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).config.TRUST_PROXY, 2)
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1' }).config.TRUST_PROXY, ['10.0.0.0/8', '127.0.0.1', '::1'])
  for (const value of ['true', '10.0.0.0/33', 'proxy.internal', '1.2.3.4/8/1', '']) {
    if (value === '') continue
    t.same(problemsOf(t, { TRUST_PROXY: value }), ['TRUST_PROXY must be false, a hop count, or a comma list of addresses or CIDRs'], value)
  }
})

t.test('refuses an ENVIRONMENT outside development, test and production', async (t) => {
  for (const value of ['prod', 'Production', 'staging']) {
    t.same(problemsOf(t, { ENVIRONMENT: value }), ['ENVIRONMENT must be one of development, test, production'], value)
  }
  t.equal(loadConfig({}).config.ENVIRONMENT, 'development', 'unset means development')
})

t.test('production lists every problem at once, even alongside values of the wrong type', async (t) => {
  const problems = problemsOf(t, {
    ENVIRONMENT: 'production',
    SECRET_KEY: 'short',
    DATABASE_URL: 'postgresql://app:postgres@db/app',
    PORT: 'abc',
    LOG_LEVEL: 'loud',
    CORS_ORIGINS: 'https://ok.example.com,not-an-origin',
    JWT_COOKIE_SAMESITE: 'None',
    JWT_COOKIE_SECURE: 'false'
  })
  const expected = [
    /^JWT_SECRET_KEY is required/,
    /^SECRET_KEY must be at least 32/,
    /^DATABASE_URL has an empty or well-known password/,
    /^PORT /,
    /^LOG_LEVEL /,
    /^CORS_ORIGINS must be a comma list/,
    /^JWT_COOKIE_SAMESITE=None requires/
  ]
  for (const re of expected) t.ok(problems.some((p) => re.test(p)), String(re))
  t.equal(problems.length, expected.length)
})

t.test('the refusal names variables but never their values', async (t) => {
  const canaries = {
    SECRET_KEY: 'canary-secret-key-value',
    JWT_SECRET_KEY: 'canary-secret-key-value',
    JWT_SECRET_KEY_PREVIOUS: 'canary-previous-value',
    DATABASE_URL: 'postgresql://canaryuser:postgres@canaryhost.internal:5432/canarydb',
    PORT: 'canary-port',
    LOG_LEVEL: 'canary-level',
    CORS_ORIGINS: 'canary-origin',
    REDIS_URL: 'canary-redis'
  }
  const message = messageOf({ ENVIRONMENT: 'production', ...canaries })
  t.ok(message.length > 0)
  for (const needle of ['canary', 'postgres@', 'canaryhost']) t.notOk(message.includes(needle), `no ${needle}`)
  for (const name of Object.keys(canaries)) t.ok(message.includes(name), `names ${name}`)
})

t.test('X_FILE reads the value from a file, removing one trailing newline', async (t) => {
  const secretFile = file('secret', `${SECRET}\n`)
  const jwtFile = file('jwt', `${JWT_SECRET}\r\n`)
  const { config } = loadConfig({ ...GOOD_PRODUCTION, SECRET_KEY: '', SECRET_KEY_FILE: secretFile, JWT_SECRET_KEY: undefined as unknown as string, JWT_SECRET_KEY_FILE: jwtFile })
  t.equal(config.SECRET_KEY, SECRET)
  t.equal(config.JWT_SECRET_KEY, JWT_SECRET)
  const twoNewlines = file('two-newlines', 'x-value\n\n')
  t.equal(loadConfig({ JWT_ISSUER_FILE: twoNewlines }).config.JWT_ISSUER, 'x-value\n', 'only one newline is removed')
  const url = file('url', 'postgresql+psycopg2://app:pw-from-file@db/app\n')
  t.equal(loadConfig({ SQLALCHEMY_DATABASE_URI_FILE: url }).config.DATABASE_URL, 'postgresql://app:pw-from-file@db/app')
  t.equal(loadConfig({ PORT_FILE: file('port', '8080\n') }).config.PORT, 8080, 'typed values too')
})

t.test('X_FILE holding a short secret is refused like the variable itself', async (t) => {
  const { SECRET_KEY: _omit, ...rest } = GOOD_PRODUCTION
  t.same(problemsOf(t, { ...rest, SECRET_KEY_FILE: file('short', 'short-secret\n') }), ['SECRET_KEY must be at least 32 characters'])
})

t.test('setting both X and X_FILE is an error', async (t) => {
  const problems = problemsOf(t, { ...GOOD_PRODUCTION, SECRET_KEY_FILE: file('both', `${SECRET}\n`) })
  t.same(problems, ['SECRET_KEY and SECRET_KEY_FILE are both set; set only one'])
})

t.test('an X_FILE that cannot be read is an error', async (t) => {
  const { JWT_SECRET_KEY: _omit, ...rest } = GOOD_PRODUCTION
  const missing = join(tempDir, 'does-not-exist')
  const problems = problemsOf(t, { ...rest, JWT_SECRET_KEY_FILE: missing })
  t.same(problems, ['JWT_SECRET_KEY_FILE names a file that cannot be read'])
  t.same(problemsOf(t, { ...rest, JWT_SECRET_KEY_FILE: tempDir }), ['JWT_SECRET_KEY_FILE names a file that cannot be read'], 'a folder')
})

t.test('SQLALCHEMY_DATABASE_URI is accepted and its dialect prefix normalised', async (t) => {
  const { DATABASE_URL: _omit, ...rest } = GOOD_PRODUCTION
  for (const [given, expected] of [
    ['postgresql+psycopg2://app:a-strong-pw@db:5432/app', 'postgresql://app:a-strong-pw@db:5432/app'],
    ['postgresql+asyncpg://app:a-strong-pw@db/app', 'postgresql://app:a-strong-pw@db/app'],
    ['postgres://app:a-strong-pw@db/app', 'postgresql://app:a-strong-pw@db/app'],
    ['postgresql://app:a-strong-pw@db/app?sslmode=require', 'postgresql://app:a-strong-pw@db/app?sslmode=require']
  ] as const) {
    t.equal(loadConfig({ ...rest, SQLALCHEMY_DATABASE_URI: given }).config.DATABASE_URL, expected, given)
  }
  t.equal(loadConfig({ DATABASE_URL: 'postgresql+psycopg2://u:p@h/d' }).config.DATABASE_URL, 'postgresql://u:p@h/d', 'DATABASE_URL too')
})

t.test('SQLALCHEMY_DATABASE_URI and DATABASE_URL both set: same URL is fine, different is an error', async (t) => {
  const same = loadConfig({ ...GOOD_PRODUCTION, SQLALCHEMY_DATABASE_URI: GOOD_PRODUCTION.DATABASE_URL.replace('postgresql://', 'postgresql+psycopg2://') })
  t.equal(same.config.DATABASE_URL, GOOD_PRODUCTION.DATABASE_URL)
  t.same(problemsOf(t, { ...GOOD_PRODUCTION, SQLALCHEMY_DATABASE_URI: 'postgresql://app:another-strong-pw@db2/app' }),
    ['SQLALCHEMY_DATABASE_URI and DATABASE_URL are both set and differ; set only one'])
})

t.test('refuses a database URL that is not PostgreSQL', async (t) => {
  t.same(problemsOf(t, { ...GOOD_PRODUCTION, DATABASE_URL: 'mysql://u:p@h/d' }), ['DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:port/database)'],
    'in production, without a second "missing" message')
  t.same(problemsOf(t, { ...GOOD_PRODUCTION, DATABASE_URL: '', SQLALCHEMY_DATABASE_URI_FILE: join(tempDir, 'missing') }), ['SQLALCHEMY_DATABASE_URI_FILE names a file that cannot be read'])
  t.same(problemsOf(t, { DATABASE_URL: 'mysql://u:p@h/d' }), ['DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:port/database)'])
  t.same(problemsOf(t, { SQLALCHEMY_DATABASE_URI: 'sqlite:///app.db' }), ['SQLALCHEMY_DATABASE_URI must be a PostgreSQL URL (postgresql://user:password@host:port/database)'])
})

t.test('refuses an sslmode in the database URL outside libpq\'s set', async (t) => {
  const problems = problemsOf(t, { DATABASE_URL: 'postgresql://u:p@h/d?sslmode=on' })
  t.equal(problems.length, 1)
  t.match(problems[0], /^DATABASE_URL has an sslmode outside its allowed set/)
})

t.test('development and test accept the defaults with one insecure-defaults warning', async (t) => {
  for (const environment of ['development', 'test']) {
    const { config, warnings } = loadConfig({ ENVIRONMENT: environment })
    t.equal(config.SECRET_KEY, DEV_SECRET_KEY)
    t.equal(config.JWT_SECRET_KEY, DEV_JWT_SECRET_KEY)
    t.equal(config.DATABASE_SSL, 'disable')
    t.equal(warnings.length, 1, environment)
    t.match(warnings[0], /insecure development defaults are in use/)
  }
  t.same(loadConfig({ SECRET_KEY: SECRET, JWT_SECRET_KEY: JWT_SECRET }).warnings, [], 'no warning with real secrets')
})

t.test('production warns when database SSL is disabled, by DATABASE_SSL or by sslmode in the URL', async (t) => {
  t.same(loadConfig({ ...GOOD_PRODUCTION, DATABASE_SSL: 'require' }).warnings, [])
  t.same(loadConfig({ ...GOOD_PRODUCTION, DATABASE_URL: `${GOOD_PRODUCTION.DATABASE_URL}?sslmode=verify-full` }).warnings, [])
  for (const env of [
    { DATABASE_SSL: 'disable' },
    { DATABASE_URL: `${GOOD_PRODUCTION.DATABASE_URL}?sslmode=disable` },
    { DATABASE_URL: `${GOOD_PRODUCTION.DATABASE_URL}?sslmode=allow` }
  ]) {
    const { warnings } = loadConfig({ ...GOOD_PRODUCTION, ...env })
    t.equal(warnings.length, 1, JSON.stringify(env))
    t.match(warnings[0], /SSL is disabled in production/)
  }
  t.same(loadConfig({ ...GOOD_PRODUCTION, DATABASE_SSL: 'disable', DATABASE_URL: `${GOOD_PRODUCTION.DATABASE_URL}?sslmode=require` }).warnings, [],
    'the URL wins over DATABASE_SSL')
})

t.test('RATE_LIMIT_WINDOW takes milliseconds or a duration with a unit, as the rate limiter reads it', async (t) => {
  const cases: Array<[string, number]> = [['60000', 60000], ['1 minute', 60000], [' 2 seconds ', 2000], ['1.5m', 90000], ['500ms', 500], ['1 hour', 3_600_000], ['2 Days', 172_800_000]]
  for (const [value, ms] of cases) {
    t.equal(durationMs(loadConfig({ RATE_LIMIT_WINDOW: value }).config.RATE_LIMIT_WINDOW), ms, value)
  }
  for (const bad of ['soon', '1 fortnight', '-1', '1e3', '0']) {
    t.same(problemsOf(t, { RATE_LIMIT_WINDOW: bad }).filter((p) => p.startsWith('RATE_LIMIT_WINDOW ')).length, 1, bad)
  }
})

t.test('the resilience variables: fallback mode, login failures and their window', async (t) => {
  const { config } = loadConfig({})
  t.equal(config.RATE_LIMIT_REDIS_FALLBACK, 'local', 'count in process while Redis is unreachable, by default')
  t.equal(config.LOGIN_MAX_FAILURES, 5)
  t.equal(durationMs(config.LOGIN_FAILURE_WINDOW), 15 * 60_000)
  t.equal(loadConfig({ RATE_LIMIT_REDIS_FALLBACK: 'open', LOGIN_MAX_FAILURES: '10', LOGIN_FAILURE_WINDOW: '1 hour' }).config.RATE_LIMIT_REDIS_FALLBACK, 'open')
  for (const [name, bad] of [['RATE_LIMIT_REDIS_FALLBACK', 'closed'], ['LOGIN_MAX_FAILURES', '0'], ['LOGIN_MAX_FAILURES', 'many'], ['LOGIN_FAILURE_WINDOW', 'soon'], ['LOGIN_FAILURE_WINDOW', '500ms']] as const) {
    t.same(problemsOf(t, { [name]: bad }).filter((p) => p.startsWith(`${name} `)).length, 1, `${name}=${bad} is refused`)
  }
})

t.test('a variable with one of our prefixes that we do not read is warned about, naming the closest known one, never its value', async (t) => {
  const { warnings } = loadConfig({ RATE_LIMT_MAX: '5', JWT_ACESS_TOKEN_EXPIRES: 'secret-looking-value', DATABASE_URL_FIEL: '/run/x', SECRET_KEY_FILEX: 'y' })
  const unknown = warnings.filter((w) => /is not a variable this service reads/.test(w))
  t.same(unknown, [
    'DATABASE_URL_FIEL is not a variable this service reads, and is ignored: did you mean DATABASE_URL_FILE?',
    'JWT_ACESS_TOKEN_EXPIRES is not a variable this service reads, and is ignored: did you mean JWT_ACCESS_TOKEN_EXPIRES?',
    'RATE_LIMT_MAX is not a variable this service reads, and is ignored: did you mean RATE_LIMIT_MAX?',
    'SECRET_KEY_FILEX is not a variable this service reads, and is ignored: did you mean SECRET_KEY_FILE?'
  ])
  t.notMatch(warnings.join('\n'), /secret-looking-value/, 'values are never said')
})

t.test('variables of other programs, known variables and their _FILE forms are not warned about', async (t) => {
  const { warnings } = loadConfig({ PATH: '/bin', HOME: '/root', NODE_ENV: 'production', OTEL_SERVICE_NAME: 'x', FASTIFY_ADDRESS: '0.0.0.0', RATE_LIMIT_MAX: '5', REDIS_URL_FILE: '/dev/null', HOSTNAME: 'pod' })
  t.same(warnings.filter((w) => /is not a variable/.test(w)), [])
})
