import { AjvCompiler } from '@fastify/ajv-compiler'

type Factory = ReturnType<typeof AjvCompiler>
// Ajv's JSON Schema mode (the JTD mode takes other options).
type CompilerOptions = NonNullable<Parameters<Factory>[1]> & { mode?: never }

const SHARED = { removeAdditional: false, useDefaults: true, allErrors: false } as const

/**
 * Fastify's validator compilers: request bodies are validated without coercion
 * ({"title": 123} is a 400, not "123") and never stripped (an unknown field is a 400,
 * not silently dropped); query strings and path parameters arrive as text, so they
 * are coerced as usual.
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
      return route.httpPart === 'body' ? strict(route) : coercing(route)
    }
  } as Factory
}
