import t from 'tap'
import { durationMs } from '../../lib/duration.js'
import { throttle } from '../../lib/throttle.js'
import { trustProxyOption } from '../../lib/trust-proxy.js'
import { reconnectDelay } from '../../lib/redis.js'

t.test('durationMs reads milliseconds and every unit the configuration accepts', async (t) => {
  t.equal(durationMs('60000'), 60000)
  t.equal(durationMs('1 minute'), 60000)
  t.equal(durationMs(' 2 seconds '), 2000)
  t.equal(durationMs('1.5m'), 90000)
  t.equal(durationMs('500ms'), 500)
  t.equal(durationMs('1 hour'), 3_600_000)
  t.equal(durationMs('2 Days'), 172_800_000)
  t.equal(durationMs('0'), 0)
  for (const bad of ['', 'soon', '1 fortnight', '-1', '1e3']) t.throws(() => durationMs(bad), RangeError, bad)
})

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

t.test('trustProxyOption turns a hop count into a function, since Fastify ignores numbers', async (t) => {
  t.equal(trustProxyOption(false), false)
  t.equal(trustProxyOption(0), false)
  const two = trustProxyOption(2)
  if (typeof two !== 'function') throw new Error('expected a function')
  t.same([0, 1, 2, 3].map((hop) => two('203.0.113.1', hop)), [true, true, false, false])
  t.same(trustProxyOption(['10.0.0.0/8']), ['10.0.0.0/8'])
  t.throws(() => trustProxyOption(true), RangeError, 'trusting every X-Forwarded-For is never produced')
})

t.test('Redis reconnects quickly at first, then every 2 s at most', async (t) => {
  t.equal(reconnectDelay(1), 100)
  t.equal(reconnectDelay(5), 500)
  t.equal(reconnectDelay(1000), 2000)
})
