// RATE_LIMIT_WINDOW is milliseconds ("60000") or a duration ("1 minute", "2 seconds").
// schemas/config.ts accepts exactly the units below, so every accepted value parses.
const UNIT_MS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000
}

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i

/** Milliseconds of a duration; throws on a value schemas/config.ts would refuse. */
export function durationMs (value: string): number {
  const match = DURATION.exec(value)
  const factor = match ? UNIT_MS[(match[2] || 'ms').toLowerCase()] : undefined
  if (!match || factor === undefined) throw new RangeError('not a duration')
  return Math.round(Number(match[1]) * factor)
}
