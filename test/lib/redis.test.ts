import t from 'tap'
import { reconnectDelay } from '../../lib/redis.js'

t.test('Redis reconnects quickly at first, then every 2 s at most', async (t) => {
  t.equal(reconnectDelay(1), 100)
  t.equal(reconnectDelay(5), 500)
  t.equal(reconnectDelay(1000), 2000)
})
