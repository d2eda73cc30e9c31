import t from 'tap'
import { trustProxyOption } from '../../server-options/trust-proxy.js'

t.test('trustProxyOption turns a hop count into a function, since Fastify ignores numbers', async (t) => {
  t.equal(trustProxyOption(false), false)
  t.equal(trustProxyOption(0), false)
  const two = trustProxyOption(2)
  if (typeof two !== 'function') throw new Error('expected a function')
  t.same([0, 1, 2, 3].map((hop) => two('203.0.113.1', hop)), [true, true, false, false])
  t.same(trustProxyOption(['10.0.0.0/8']), ['10.0.0.0/8'])
})
