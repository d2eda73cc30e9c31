import { AjvCompiler } from '@fastify/ajv-compiler'
import type { ErrorObject } from 'ajv'

type Factory = ReturnType<typeof AjvCompiler>
/** What Ajv compiled for one part of one route. */
type Validate = ReturnType<ReturnType<Factory>>
// Ajv's JSON Schema mode (the JTD mode takes other options).
type CompilerOptions = NonNullable<Parameters<Factory>[1]> & { mode?: never }

const SHARED = { removeAdditional: false, useDefaults: true, allErrors: false } as const

/**
 * What no request body or query string may hold, whatever its schema says
 * (docs/edge.md, "Input the database would refuse"): a number that is not finite
 * (JSON.parse reads 1e400 as Infinity, and Ajv's coercion turns "Infinity" into a
 * number that skips `minimum`/`maximum`), and a string or key holding U+0000 or a lone
 * surrogate (PostgreSQL text cannot store the first; UTF-8 cannot encode the second,
 * so it would be stored, hashed or compared as U+FFFD). Walked with a stack, not by
 * recursion: a schema that allows any value allows any depth.
 */
export function unsafeInput (data: unknown): { path: string, message: string } | undefined {
  const stack: Array<[unknown, string]> = [[data, '']]
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, string]
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return { path, message: 'must be a finite number' }
    } else if (typeof value === 'string') {
      if (!safeText(value)) return { path, message: 'must not contain U+0000 or a lone surrogate' }
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push([value[i], `${path}/${i}`])
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        // The object is named, not the key: the answer never echoes what it refuses.
        if (!safeText(key)) return { path, message: 'must not have a key holding U+0000 or a lone surrogate' }
        stack.push([item, `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`])
      }
    }
  }
  return undefined
}

function safeText (value: string): boolean {
  return value.isWellFormed() && !value.includes('\u0000')
}

// A property name simple enough to repeat in an answer (never a long or odd key a client made up).
const NAMEABLE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/

/**
 * Ajv says "must NOT have additional properties" without saying which; the answer
 * names it (`body must NOT have additional property 'titel'`) when the name is
 * plain, and says so without the name otherwise. Ajv's own error is not changed.
 */
export function namingTheField (error: ErrorObject): ErrorObject {
  if (error.keyword !== 'additionalProperties') return error
  const name = String((error.params as { additionalProperty?: unknown }).additionalProperty ?? '')
  return { ...error, message: NAMEABLE.test(name) ? `must NOT have additional property '${name}'` : 'must NOT have an additional property (its name is not shown)' }
}

/** The route's validator, then the rule above, as one validator: no route can leave it out. */
function withInputRule (validate: Validate): Validate {
  function validateInput (data: unknown): boolean {
    // Synchronous: no schema of ours is $async.
    if (validate(data) !== true) {
      validateInput.errors = validate.errors?.map(namingTheField)
      return false
    }
    const unsafe = unsafeInput(data)
    if (unsafe === undefined) return true
    const error: ErrorObject = { keyword: 'safeInput', instancePath: unsafe.path, schemaPath: '#', params: {}, message: unsafe.message }
    validateInput.errors = [error]
    return false
  }
  validateInput.errors = null as ErrorObject[] | null | undefined
  return validateInput as unknown as Validate
}

/**
 * Fastify's validator compilers: request bodies are validated without coercion
 * ({"title": 123} is a 400, not "123") and never stripped (an unknown field is a 400,
 * not silently dropped); query strings and path parameters arrive as text, so they
 * are coerced as usual. Bodies and query strings also pass the input rule above;
 * path parameters do not, because an id that cannot exist is a 404, not a 400.
 */
export function buildValidator (): Factory {
  const factory = AjvCompiler()
  return function buildValidatorFromParts (externalSchemas, ajvOptions) {
    const options = (ajvOptions ?? {}) as CompilerOptions
    const withCoercion = (coerceTypes: false | 'array'): CompilerOptions => ({
      ...options,
      customOptions: { ...options.customOptions, ...SHARED, coerceTypes }
    })
    const strict = factory(externalSchemas, withCoercion(false))
    const coercing = factory(externalSchemas, withCoercion('array'))
    return function compile (route) {
      if (route.httpPart === 'body') return withInputRule(strict(route))
      const validate = coercing(route)
      return route.httpPart === 'querystring' ? withInputRule(validate) : validate
    }
  } as Factory
}
