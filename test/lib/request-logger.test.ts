import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { RequestLogger, requestLogger } from '../../lib/request-logger.js'

function capture (level = 'info') {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      done()
    }
  })
  const parent = pino({ level, base: { pid: 1, hostname: 'h' }, timestamp: false }, stream)
  return { parent, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('a line written through the parent with the id first is the line the child would write', async (t) => {
  const { parent, lines } = capture()
  const line = { method: 'GET', route: '/health/live', statusCode: 200 }
  parent.child({ reqId: 'r-1' }).info(line, 'request completed')
  parent.info({ reqId: 'r-1', ...line }, 'request completed')
  t.equal(lines.length, 2)
  t.equal(lines[1], lines[0], 'byte for byte')
})

t.test('every line a request logs itself carries its id, once', async (t) => {
  const { parent, lines, parsed } = capture('debug')
  const log = new RequestLogger(parent, { reqId: 'r-2' })
  log.info({ ms: 3 }, 'slow request started')
  log.warn('plain %s', 'message')
  log.error(new Error('boom'))
  log.debug({ a: 1 }, 'debug line')
  log.trace('not written at debug')
  log.child({ part: 'db' }).info('from a child')
  t.same(parsed().map((l) => [l.reqId, l.msg]), [
    ['r-2', 'slow request started'], ['r-2', 'plain message'], ['r-2', 'boom'], ['r-2', 'debug line'], ['r-2', 'from a child']
  ])
  t.ok(lines.every((l) => l.split('"reqId"').length === 2), 'the id appears once per line')
  t.equal(parsed()[2]?.level, 50)
  t.match(parsed()[2], { err: { type: 'Error', message: 'boom' } }, 'errors are serialised as pino does')
  t.equal(parsed()[4]?.part, 'db')
})

t.test('levels: the parent\'s until the request sets its own, which stays with that request', async (t) => {
  const { parent, parsed } = capture('info')
  const quiet = new RequestLogger(parent, { reqId: 'r-3' })
  const chatty = new RequestLogger(parent, { reqId: 'r-4' })
  t.equal(quiet.level, 'info')
  chatty.level = 'debug'
  t.equal(chatty.level, 'debug')
  t.equal(quiet.level, 'info')
  t.equal(parent.level, 'info', 'the parent is untouched')
  quiet.debug('dropped')
  chatty.debug('kept')
  t.same(parsed().map((l) => l.msg), ['kept'])
})

t.test('the factory gives a real child when the route sets its own level or serializers', async (t) => {
  const { parent } = capture()
  t.type(requestLogger(parent, { reqId: 'a' }, {}), RequestLogger)
  const leveled = requestLogger(parent, { reqId: 'b' }, { level: 'warn' })
  t.notOk(leveled instanceof RequestLogger)
  t.equal(leveled.level, 'warn')
  t.notOk(requestLogger(parent, { reqId: 'c' }, { serializers: {} }) instanceof RequestLogger)
})
