import t from 'tap'
import { throttle } from '../../lib/throttle.js'

t.test('throttle runs once per interval and counts what it swallowed', async (t) => {
  let now = 0
  const runs: number[] = []
  const throttled = throttle(5000, () => now)
  for (let i = 0; i < 10; i++) {
    throttled((suppressed) => runs.push(suppressed))
    now += 1000
  }
  // Runs at 0 s, 5 s; the nine others in between were counted.
  t.same(runs, [0, 4])
})
