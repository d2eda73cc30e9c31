/**
 * Runs `fn` at most once per interval and counts the calls it swallowed in
 * between, so that a dependency failing on every request (Redis down) writes one
 * log line every few seconds instead of one per request.
 */
export function throttle (intervalMs: number, now: () => number = Date.now): (fn: (suppressed: number) => void) => void {
  let last = -Infinity
  let suppressed = 0
  return function throttled (fn) {
    const time = now()
    if (time - last < intervalMs) {
      suppressed++
      return
    }
    last = time
    const count = suppressed
    suppressed = 0
    fn(count)
  }
}
