import { CONFIG_VARIABLES } from './schema.js'
import type { Source } from './sources.js'

// A misspelt variable (RATE_LIMT_MAX) would otherwise be ignored in silence, and
// its default used. Only names that begin as ours do (RATE_, JWT_, DATABASE_, ...)
// are looked at: the environment holds many variables that are none of our business.

const KNOWN = new Set<string>([...CONFIG_VARIABLES, ...CONFIG_VARIABLES.map((name) => `${name}_FILE`)])
const PREFIXES = new Set(CONFIG_VARIABLES.filter((name) => name.includes('_')).map((name) => name.split('_')[0]!))

/** Levenshtein distance, for the "did you mean" of a warning. */
function distance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

/** The known variable (or X_FILE form) nearest to `name`. */
export function closestVariable (name: string): string {
  const candidates = [...KNOWN]
  let best = candidates[0]!
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const d = distance(name, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

/** One warning per variable with one of our prefixes that the service does not read (names only, never values). */
export function unknownVariableWarnings (source: Source): string[] {
  const warnings: string[] = []
  for (const name of Object.keys(source).sort()) {
    if (KNOWN.has(name) || !PREFIXES.has(name.split('_')[0]!) || !name.includes('_')) continue
    warnings.push(`${name} is not a variable this service reads, and is ignored: did you mean ${closestVariable(name)}?`)
  }
  return warnings
}
