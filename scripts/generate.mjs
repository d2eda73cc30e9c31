#!/usr/bin/env node
// `npm run generate -- resource <plural> [--field name:type[:limit]]... [--singular <word>]`
//
// Writes a resource that follows the notes pattern (docs/notes.md, "Adding your own
// resource"): the next-numbered migration, TypeBox schemas, a repository, routes with
// scopes, ETags and keyset pagination, and its tests; registers the repository in
// db/index.ts, the scopes in schemas/auth.ts (SCOPES and USER_SCOPES) and the tag in
// plugins/external/swagger.ts. Templates: scripts/templates/resource/, derived from
// the notes files. Plain JavaScript, so it runs from a fresh clone without a build.
// It refuses names that clash and never overwrites a file; nothing is written
// unless every check passes.
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline/promises'

const ROOT = join(import.meta.dirname, '..')
const TEMPLATES = join(import.meta.dirname, 'templates', 'resource')

const USAGE = `Usage: npm run generate -- resource <plural> [--field name:type[:limit]]... [--singular <word>]

  <plural>   lower-case words joined by hyphens, plural: widgets, shipping-labels
  --field    name:string[:max]      1..max characters, required (max 200 by default)
             name:text[:max]        0..max characters, optional, default '' (max 20000)
             name:integer[:min..max] required (the PostgreSQL integer range by default)
             name:boolean           optional, default false
             Field names are snake_case. Without --field, the fields are asked for
             when the terminal is interactive.
  --singular the singular when it is not the plural without its "s" (people -> person)

Example: npm run generate -- resource widgets --field name:string:120 --field count:integer --field done:boolean`

class Refusal extends Error {}
const refuse = (message) => { throw new Refusal(message) }

// Words that cannot name a resource or a field in the generated TypeScript.
const JS_RESERVED = new Set(`break case catch class const continue debugger default delete do else enum export extends
  false finally for function if import in instanceof new null return super switch this throw true try typeof var void
  while with yield let static implements interface package private protected public await async of get set
  any unknown never undefined string number boolean bigint symbol object type declare namespace module abstract as
  asserts infer is keyof readonly require global satisfies accessor constructor arguments eval`.split(/\s+/))
// Globals and library names a generated file refers to or that would shadow them.
const GLOBALS = new Set(`Array Object String Number Boolean Symbol BigInt Date Error Map Set WeakMap WeakSet Promise
  Proxy Reflect RegExp JSON Math Intl Function Record Partial Required Readonly Pick Omit Exclude Extract ReturnType
  Awaited Buffer URL URLSearchParams Request Response Headers process console globalThis Type Static TSchema
  Position Queryable WriteResult Page`.split(/\s+/))
// PostgreSQL's reserved key words (SQL Key Words appendix: "reserved" and
// "reserved (can be function or type)"), which cannot name a table or column unquoted.
const SQL_RESERVED = new Set(`all analyse analyze and any array as asc asymmetric authorization binary both case cast
  check collate collation column concurrently constraint create cross current_catalog current_date current_role
  current_schema current_time current_timestamp current_user default deferrable desc distinct do else end except
  false fetch for foreign freeze from full grant group having ilike in initially inner intersect into is isnull join
  lateral leading left like limit localtime localtimestamp natural not notnull null offset on only or order outer
  overlaps placing primary references returning right select session_user similar some symmetric system_user table
  tablesample then to trailing true union unique user using variadic verbose when where window with`.split(/\s+/))
// Route prefixes the service answers outside routes/ (plugins/external/swagger.ts,
// plugins/app/metrics.ts), and names the generated code cannot take.
const OTHER_PREFIXES = ['docs', 'metrics', 'well-known', 'schema-migrations']
const FIELD_RESERVED = new Set(['id', 'owner_id', 'created_at', 'updated_at', 'version'])

const INT_MIN = -2_147_483_648
const INT_MAX = 2_147_483_647
const DEFAULT_MAX = { string: 200, text: 20_000 }
// Inside the default 1 MiB body limit even in 4-byte characters.
const CAP = { string: 10_000, text: 100_000 }

// ---- names ----------------------------------------------------------------

const WORDS = /^[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*$/
const cap = (w) => w[0].toUpperCase() + w.slice(1)

/** The singular of the last word of a plural, or a refusal saying why it cannot be guessed. */
function singularOf (word, plural) {
  if (/[^aeiou]ies$/.test(word)) return word.slice(0, -3) + 'y'
  if (/(ss|sh|ch|x|z)es$/.test(word)) return word.slice(0, -2)
  if (/(ss|us|is)$/.test(word)) refuse(`"${plural}" looks singular (it ends in "${word.slice(-2)}"): give the plural, and --singular if it is irregular`)
  if (/[^s]s$/.test(word)) return word.slice(0, -1)
  return refuse(`"${plural}" is not a plural ending in "s": give the plural (e.g. widgets), and --singular <word> for an irregular one (people --singular person)`)
}

function resourceNames (plural, singular) {
  if (typeof plural !== 'string' || plural === '') refuse('name the resource: npm run generate -- resource <plural>')
  if (!WORDS.test(plural)) refuse(`"${plural}" is not a valid name: lower-case letters and digits, words joined by single hyphens, starting with a letter (e.g. widgets, shipping-labels)`)
  if (plural.length > 40) refuse(`"${plural}" is longer than 40 characters (PostgreSQL names of its table and index must stay under 63)`)
  const words = plural.split('-')
  let singularWords
  if (singular !== undefined) {
    if (!WORDS.test(singular)) refuse(`--singular "${singular}" is not a valid name`)
    singularWords = singular.split('-')
  } else {
    singularWords = [...words.slice(0, -1), singularOf(words.at(-1), plural)]
  }
  if (singularWords.join('-') === plural) refuse(`the singular and the plural are both "${plural}": the generated code needs two different names`)
  const camel = (ws) => ws[0] + ws.slice(1).map(cap).join('')
  return {
    plural,
    singular: singularWords.join('-'),
    table: words.join('_'),
    pluralCamel: camel(words),
    Plural: words.map(cap).join(''),
    singularCamel: camel(singularWords),
    Singular: singularWords.map(cap).join(''),
    pluralText: words.join(' '),
    singularText: singularWords.join(' '),
    SingularText: cap(singularWords.join(' '))
  }
}

// ---- fields ---------------------------------------------------------------

const FIELD_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/

function parseField (spec) {
  const [name, type, limit, ...rest] = String(spec).split(':')
  if (rest.length > 0 || name === undefined || type === undefined) refuse(`--field "${spec}": expected name:type[:limit]`)
  if (!FIELD_NAME.test(name) || name.length > 40) refuse(`field "${name}": snake_case letters and digits, starting with a letter, at most 40 characters`)
  if (FIELD_RESERVED.has(name)) refuse(`field "${name}": every resource already has id, owner_id, created_at, updated_at and version`)
  if (SQL_RESERVED.has(name)) refuse(`field "${name}" is a reserved word in PostgreSQL`)
  if (JS_RESERVED.has(name)) refuse(`field "${name}" is a reserved word in TypeScript`)
  if (type === 'string' || type === 'text') {
    let max = DEFAULT_MAX[type]
    if (limit !== undefined) {
      if (!/^[1-9][0-9]*$/.test(limit)) refuse(`field "${name}": the limit of a ${type} is its maximum length, a positive integer`)
      max = Number(limit)
    }
    if (max > CAP[type]) refuse(`field "${name}": at most ${CAP[type]} characters for a ${type}`)
    return { name, type, max }
  }
  if (type === 'integer') {
    let min = INT_MIN
    let max = INT_MAX
    if (limit !== undefined) {
      const m = /^(-?[0-9]+)\.\.(-?[0-9]+)$/.exec(limit)
      if (!m) refuse(`field "${name}": the limit of an integer is a range, min..max (e.g. 0..1000)`)
      min = Number(m[1])
      max = Number(m[2])
      if (!(min < max) || min < INT_MIN || max > INT_MAX) refuse(`field "${name}": the range must be increasing and within ${INT_MIN}..${INT_MAX}`)
    }
    return { name, type, min, max }
  }
  if (type === 'boolean') {
    if (limit !== undefined) refuse(`field "${name}": a boolean takes no limit`)
    return { name, type }
  }
  return refuse(`field "${name}": unknown type "${type}" (string, text, integer or boolean)`)
}

function checkFields (fields) {
  if (fields.length === 0) refuse('give at least one --field (or run it in a terminal to be asked)')
  if (fields.length > 30) refuse('at most 30 fields')
  const seen = new Set()
  for (const f of fields) {
    if (seen.has(f.name)) refuse(`field "${f.name}" is given twice`)
    seen.add(f.name)
  }
}

async function promptFields () {
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  const fields = []
  try {
    process.stdout.write('Fields as name:type[:limit] (types: string, text, integer, boolean); an empty line ends.\n')
    for (;;) {
      const line = (await rl.question(`field ${fields.length + 1}: `)).trim()
      if (line === '') {
        if (fields.length > 0) break
        process.stdout.write('at least one field\n')
        continue
      }
      try {
        const field = parseField(line)
        if (fields.some((f) => f.name === field.name)) refuse(`field "${field.name}" is given already`)
        fields.push(field)
      } catch (err) {
        if (!(err instanceof Refusal)) throw err
        process.stdout.write(`${err.message}\n`)
      }
    }
  } catch (err) {
    // Ctrl+D or Ctrl+C at the prompt.
    if (err?.code === 'ABORT_ERR') refuse('stopped at the prompt: nothing written')
    throw err
  } finally {
    rl.close()
  }
  return fields
}

// ---- the project as it stands ---------------------------------------------

const read = (file) => readFileSync(join(ROOT, file), 'utf8')

/** The identifiers the templates' code uses, outside comments and single-quoted strings. */
function templateIdentifiers () {
  const out = new Set()
  for (const file of readdirSync(TEMPLATES).filter((f) => f.endsWith('.ts.tmpl'))) {
    const code = readFileSync(join(TEMPLATES, file), 'utf8')
      .replace(/\{\{\w+\}\}/g, '\0')
      .replace(/\/\*[\s\S]*?\*\//g, ' ')
      .replace(/(^|[^:])\/\/.*$/gm, '$1')
      .replace(/'(?:[^'\\\n]|\\.)*'/g, "''")
    for (const m of code.matchAll(/(?<![\w$\0])[A-Za-z_$][\w$]*(?![\w$\0])/g)) out.add(m[0])
  }
  return out
}

function checkNames (n) {
  const routeDirs = readdirSync(join(ROOT, 'routes'))
  for (const word of [n.plural, n.singular]) {
    if (routeDirs.includes(word) || OTHER_PREFIXES.includes(word)) refuse(`"${word}" is a route prefix the service already uses (/${word})`)
  }
  const index = read('db/index.ts')
  if (new RegExp(`^\\s*${n.pluralCamel}:`, 'm').test(index)) refuse(`"${n.plural}" exists already: repositories() in db/index.ts has ${n.pluralCamel}`)
  const files = [`schemas/${n.plural}.ts`, `db/${n.plural}.ts`, `routes/${n.plural}`, `test/routes/${n.plural}.test.ts`,
    `schemas/${n.singular}.ts`, `db/${n.singular}.ts`]
  for (const file of files) if (existsSync(join(ROOT, file))) refuse(`${file} exists already; the generator never overwrites a file`)
  for (const file of readdirSync(join(ROOT, 'migrations'))) {
    if (file.endsWith(`.do.${n.plural}.sql`)) refuse(`migrations/${file} exists already`)
    const sql = read(join('migrations', file))
    if (new RegExp(`CREATE TABLE (IF NOT EXISTS )?${n.table}\\b`, 'i').test(sql)) refuse(`the table ${n.table} exists already (migrations/${file})`)
  }
  if (read('schemas/auth.ts').includes(`'${n.plural}:`)) refuse(`the scopes ${n.plural}:* exist already (schemas/auth.ts)`)
  if (SQL_RESERVED.has(n.table)) refuse(`"${n.table}" is a reserved word in PostgreSQL`)
  const used = templateIdentifiers()
  for (const id of [n.pluralCamel, n.singularCamel, n.Plural, n.Singular]) {
    if (JS_RESERVED.has(id) || JS_RESERVED.has(id.toLowerCase())) refuse(`"${id}" is a reserved word in TypeScript`)
    if (GLOBALS.has(id)) refuse(`"${id}" would shadow a global or a name the generated code imports`)
    if (used.has(id)) refuse(`"${id}" is a name the generated code already uses for something else`)
  }
}

/** The next free migration number, at run time (postgrator applies them in order). */
function nextMigration () {
  const numbers = readdirSync(join(ROOT, 'migrations'))
    .map((f) => /^(\d+)\.do\./.exec(f)).filter(Boolean).map((m) => Number(m[1]))
  return String(Math.max(0, ...numbers) + 1).padStart(3, '0')
}

// ---- code fragments for the templates -------------------------------------

const quote = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
const upper = (f) => `${f.name.toUpperCase()}_MAX_LENGTH`
const pascal = (f) => f.name.split('_').map(cap).join('')
const constOf = (f) => `${pascal(f)}Field`
const optional = (f) => f.type === 'text' || f.type === 'boolean'
const defaultOf = (f) => f.type === 'text' ? "''" : 'false'
const intRange = (f) => f.min === INT_MIN && f.max === INT_MAX ? 'A 32-bit integer' : `${f.min} to ${f.max}`

/** Test values: one valid sample, a different valid value, and the invalid ones. */
function sample (f) {
  if (f.type === 'string') return quote('A sample'.slice(0, f.max))
  if (f.type === 'text') return quote('Some text'.slice(0, f.max))
  if (f.type === 'integer') return String(Math.max(f.min, Math.min(f.max, 1)))
  return 'true'
}
function changed (f) {
  if (f.type === 'string') return quote('Changed'.slice(0, f.max))
  if (f.type === 'text') return quote('Changed text'.slice(0, f.max))
  if (f.type === 'integer') return String(Number(sample(f)) + 1 <= f.max ? Number(sample(f)) + 1 : Number(sample(f)) - 1)
  return 'false'
}
function badValues (f) {
  const common = [['null', 'null'], ['as an array', `[${sample(f)}]`]]
  if (f.type === 'string') return [['as a number', '123'], ...common, ['empty', "''"], [`of ${f.max + 1} characters`, `'x'.repeat(${f.max + 1})`], ['with NUL', "'a\\u0000b'"]]
  if (f.type === 'text') return [['as a number', '123'], ...common, [`of ${f.max + 1} characters`, `'x'.repeat(${f.max + 1})`], ['with NUL', "'a\\u0000b'"]]
  if (f.type === 'integer') return [['as a string', `'${sample(f)}'`], ['as a fraction', '1.5'], ...common, ['below the range', String(f.min - 1)], ['above the range', String(f.max + 1)]]
  return [['as a string', "'true'"], ['as a number', '1'], ...common]
}

function fragments (n, fields, number) {
  const sqlColumn = (f) => {
    if (f.type === 'string') return `  ${f.name} text NOT NULL CHECK (char_length(${f.name}) BETWEEN 1 AND ${f.max}),`
    if (f.type === 'text') return `  ${f.name} text NOT NULL DEFAULT '' CHECK (char_length(${f.name}) <= ${f.max}),`
    if (f.type === 'integer') return f.min === INT_MIN && f.max === INT_MAX ? `  ${f.name} integer NOT NULL,` : `  ${f.name} integer NOT NULL CHECK (${f.name} BETWEEN ${f.min} AND ${f.max}),`
    return `  ${f.name} boolean NOT NULL DEFAULT false,`
  }
  const fieldSchema = (f) => {
    if (f.type === 'string') return `const ${constOf(f)} = Type.String({ minLength: 1, maxLength: ${upper(f)}, description: '1 to ${f.max} characters' })`
    if (f.type === 'text') return `const ${constOf(f)} = Type.String({ maxLength: ${upper(f)}, description: 'Up to ${f.max} characters' })`
    if (f.type === 'integer') return `const ${constOf(f)} = Type.Integer({ minimum: ${f.min}, maximum: ${f.max}, description: '${intRange(f)}' })`
    return `const ${constOf(f)} = Type.Boolean()`
  }
  const responseType = { string: 'Type.String()', text: 'Type.String()', integer: 'Type.Integer()', boolean: 'Type.Boolean()' }
  const tsType = { string: 'string', text: 'string', integer: 'number', boolean: 'boolean' }
  const ctor = { text: 'Type.String', boolean: 'Type.Boolean' }
  const strings = fields.filter((f) => f.type === 'string' || f.type === 'text')
  const required = fields.filter((f) => !optional(f))
  const object = (entries) => entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`
  const first = fields[0]
  const bulk = (f) => f.type === 'string' ? "'x'" : sample(f)
  const bad = (wrap) => fields.flatMap((f) => badValues(f).map(([what, value]) => wrap(`${f.name} ${what}`, `${f.name}: ${value}`)))

  return {
    ...n,
    number,
    migrationFile: `${number}.do.${n.plural}.sql`,
    sqlColumns: fields.map(sqlColumn).join('\n'),
    limitConstants: strings.map((f) => `export const ${upper(f)} = ${f.max.toLocaleString('en-US').replace(/,/g, '_')}`).join('\n'),
    fieldSchemas: fields.map(fieldSchema).join('\n'),
    responseProperties: fields.map((f) => `  ${f.name}: ${responseType[f.type]},`).join('\n'),
    createProperties: fields.map((f) => optional(f)
      ? `  ${f.name}: Type.Optional(${ctor[f.type]}({ ...${constOf(f)}, default: ${defaultOf(f)} }))`
      : `  ${f.name}: ${constOf(f)}`).join(',\n'),
    updateProperties: fields.map((f) => `  ${f.name}: Type.Optional(${constOf(f)})`).join(',\n'),
    columnList: fields.map((f) => f.name).join(', '),
    insertPlaceholders: fields.map((_, i) => `$${i + 2}`).join(', '),
    insertValues: fields.map((f) => `values.${f.name}`).join(', '),
    updateAssignments: fields.map((f, i) => `${f.name} = COALESCE($${i + 3}, ${f.name})`).join(', '),
    updateValues: fields.map((f) => `changes.${f.name} ?? null`).join(', '),
    expectedParam: String(fields.length + 3),
    createValues: `{ ${fields.map((f) => optional(f) ? `${f.name}: request.body.${f.name} ?? ${defaultOf(f)}` : `${f.name}: request.body.${f.name}`).join(', ')} }`,
    tsFields: fields.map((f) => `${f.name}: ${tsType[f.type]}`).join(', '),
    sortedKeys: ['id', 'created_at', 'updated_at', 'version', ...fields.map((f) => f.name)].sort().map(quote).join(', '),
    minimalPayload: object(required.map((f) => `${f.name}: ${sample(f)}`)),
    fullPayload: object(fields.map((f) => `${f.name}: ${sample(f)}`)),
    changePayload: `{ ${first.name}: ${changed(first)} }`,
    defaultsPayload: object(fields.filter(optional).map((f) => `${f.name}: ${f.type === 'text' ? "''" : 'false'}`).concat(required.map((f) => `${f.name}: ${sample(f)}`))),
    withoutHelper: required.length === 0
      ? ''
      : 'function without (payload: Record<string, unknown>, key: string): Record<string, unknown> {\n  const { [key]: _dropped, ...rest } = payload\n  return rest\n}\n\n',
    createBadCases: [
      ...required.map((f) => `    ['no ${f.name}', without(FULL, ${quote(f.name)}), 'VALIDATION_ERROR'],`),
      ...bad((what, entry) => `    [${quote(what)}, { ...FULL, ${entry} }, 'VALIDATION_ERROR'],`)
    ].join('\n'),
    updateBadCases: bad((what, entry) => `    [${quote(what)}, { ${entry} }],`).join('\n'),
    longestPayload: strings.length === 0 ? 'FULL' : `{ ...FULL, ${strings.map((f) => `${f.name}: '😀'.repeat(${f.max})`).join(', ')} }`,
    bulkColumns: required.map((f) => `, ${f.name}`).join(''),
    bulkValues: required.map((f) => `, ${bulk(f)}`).join('')
  }
}

function render (template, values) {
  return readFileSync(join(TEMPLATES, template), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, key) => {
    if (!(key in values)) throw new Error(`template ${template}: no value for {{${key}}}`)
    return values[key]
  })
}

// ---- edits to existing files ----------------------------------------------

/** `text` with `replace` applied, or a refusal naming the file whose shape changed. */
function edit (file, text, pattern, replace) {
  if (!pattern.test(text)) refuse(`${file} does not have the shape the generator expects (${pattern}); add the resource by hand (docs/notes.md)`)
  return text.replace(pattern, replace)
}

function edits (n) {
  const out = {}
  let index = read('db/index.ts')
  const importLine = `import { ${n.pluralCamel}Repository } from './${n.plural}.js'`
  const lines = index.split('\n')
  const imports = lines.map((l, i) => [l, i]).filter(([l]) => /^import .* from '\.\/.*'$/.test(l))
  if (imports.length === 0) refuse('db/index.ts has no imports the generator recognises')
  const from = (l) => /from '(.*)'/.exec(l)[1]
  const before = imports.find(([l]) => from(l) > `./${n.plural}.js`)
  lines.splice(before ? before[1] : imports.at(-1)[1] + 1, 0, importLine)
  index = edit('db/index.ts', lines.join('\n'), /(export function repositories \([^)]*\) \{\n\s*return \{\n[\s\S]*?)(,?)(\n {2}\}\n\})/,
    (_, body, _comma, end) => `${body},\n    ${n.pluralCamel}: ${n.pluralCamel}Repository(db)${end}`)
  out['db/index.ts'] = index

  let auth = read('schemas/auth.ts')
  auth = edit('schemas/auth.ts', auth, /(export const SCOPES: [^=]*= \{\n[\s\S]*?)(\n\})/,
    (_, body, end) => `${body},\n  '${n.plural}:read': 'Read ${n.pluralText}',\n  '${n.plural}:write': 'Create, change and delete ${n.pluralText}'${end}`)
  auth = edit('schemas/auth.ts', auth, /(export const USER_SCOPES: [^=]*= \[[^\]]*)(\])/,
    (_, body, end) => `${body}, '${n.plural}:read', '${n.plural}:write'${end}`)
  out['schemas/auth.ts'] = auth

  const swagger = read('plugins/external/swagger.ts')
  out['plugins/external/swagger.ts'] = edit('plugins/external/swagger.ts', swagger, /( +tags: \[\n(?: +\{ name: .*\},?\n)*? +\{ name: .*\})(\n +\],)/,
    (_, body, end) => `${body},\n        { name: '${n.plural}', description: ${quote(`${cap(n.pluralText)}: each user's own; service clients with ${n.plural}:read read them`)} }${end}`)
  return out
}

// ---- main -----------------------------------------------------------------

async function main (argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { field: { type: 'string', multiple: true }, singular: { type: 'string' }, help: { type: 'boolean', short: 'h' } }
  })
  if (values.help) { process.stdout.write(`${USAGE}\n`); return }
  const [kind, plural, ...extra] = positionals
  if (kind !== 'resource') refuse(`the only generator is "resource"\n\n${USAGE}`)
  if (extra.length > 0) refuse(`one resource at a time (also given: ${extra.join(' ')})`)
  const names = resourceNames(plural, values.singular)
  checkNames(names)
  let fields = (values.field ?? []).map(parseField)
  if (fields.length === 0 && process.stdin.isTTY) fields = await promptFields()
  checkFields(fields)

  const number = nextMigration()
  const v = fragments(names, fields, number)
  const files = {
    [`migrations/${v.migrationFile}`]: render('migration.sql.tmpl', v),
    [`schemas/${names.plural}.ts`]: render('schemas.ts.tmpl', v),
    [`db/${names.plural}.ts`]: render('db.ts.tmpl', v),
    [`routes/${names.plural}/index.ts`]: render('routes.ts.tmpl', v),
    [`test/routes/${names.plural}.test.ts`]: render('test.ts.tmpl', v)
  }
  for (const file of Object.keys(files)) if (existsSync(join(ROOT, file))) refuse(`${file} exists already; the generator never overwrites a file`)
  const changes = edits(names)

  process.stdout.write(`/${names.plural}: singular "${names.singular}" (${names.Singular}), table ${names.table}, scopes ${names.plural}:read and ${names.plural}:write\n`)
  // Every check has passed: now write ('wx' refuses a file that appeared meanwhile).
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(ROOT, file)), { recursive: true })
    writeFileSync(join(ROOT, file), text, { flag: 'wx' })
    process.stdout.write(`created  ${file}\n`)
  }
  for (const [file, text] of Object.entries(changes)) {
    writeFileSync(join(ROOT, file), text)
    process.stdout.write(`changed  ${file}\n`)
  }
  process.stdout.write(`\nNext: npm test -- test/routes/${names.plural}.test.ts, then describe /${names.plural} in docs/ (docs/notes.md is the model).\n`)
}

try {
  await main(process.argv.slice(2))
} catch (err) {
  if (!(err instanceof Refusal) && err?.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && err?.code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw err
  process.stderr.write(`generate: ${err.message}\n`)
  process.exitCode = 1
}
