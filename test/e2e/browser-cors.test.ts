import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { build, registerUser, TEST_PASSWORD } from '../helper.js'

// CORS and the cookie flow in a real browser (Debian's Chromium, driven by
// playwright-core): pages served from other local origins call the API with fetch,
// as a single-page app or a hostile page would. The API runs at http://localhost:A;
// the listed page at http://localhost:P is cross-origin but same-site, so the
// browser sends the SameSite=Lax cookies with `credentials: 'include'`; the unlisted
// page at http://localhost:U is as close as an attacker gets (same site, and
// cookies are not isolated by port, so it can even read the CSRF cookie).

const CHROMIUM = '/usr/bin/chromium'

// The functions passed to page.evaluate run in the page, where `document` is the
// DOM's; the project compiles without DOM types, so this file names what it uses.
interface PageDocument {
  cookie: string
  body: { append: (node: unknown) => void }
  createElement: (tag: string) => any
  forms: Array<{ submit: () => void }>
}
declare const document: PageDocument
if (!existsSync(CHROMIUM)) {
  // CI installs Chromium (.ci/run): there a missing browser is a failure, never a skip.
  if (process.env.CI) t.fail(`${CHROMIUM} is missing: apt-get install -y chromium`)
  else t.plan(0, `skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`)
} else {
  await main()
}

function listen (server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address()
    resolve(typeof address === 'object' && address ? address.port : 0)
  }))
}

/** A page origin: an empty HTML document that the test's script runs in. */
async function pageOrigin (test: Test, title: string): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(`<!doctype html><title>${title}</title><p>${title}</p>`)
  })
  const port = await listen(server)
  test.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://localhost:${port}`
}

async function main (): Promise<void> {
  const { chromium } = await import('playwright-core')
  const listed = await pageOrigin(t, 'listed')
  const unlisted = await pageOrigin(t, 'unlisted')
  const logs: Array<Record<string, any>> = []
  const app = await build(t, {
    logs,
    env: { CORS_ORIGINS: listed, JWT_TOKEN_LOCATION: 'headers,cookies', JWT_COOKIE_CSRF_PROTECT: 'true', JWT_COOKIE_SAMESITE: 'Lax' }
  })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const api = address.replace('127.0.0.1', 'localhost')
  const user = await registerUser(app)

  const profile = mkdtempSync(join(tmpdir(), 'svc-chromium-'))
  t.teardown(() => rmSync(profile, { recursive: true, force: true }))
  // A fresh profile each run; no background networking (this machine's network is closed).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const consoles = new WeakMap<object, string[]>()
  const open = async (origin: string) => {
    const page = await browser.newPage()
    const lines: string[] = []
    page.on('console', (message) => lines.push(message.text()))
    consoles.set(page, lines)
    await page.goto(origin)
    return page
  }
  /** A failed evaluate, with what the browser logged: Chromium explains each CORS refusal there. */
  const explain = (page: object) => (err: Error): never => {
    throw new Error(`${err.message.split('\n')[0]}\nbrowser console:\n${(consoles.get(page) ?? []).join('\n')}`)
  }

  t.test('from a listed origin, fetch reads the response and its exposed headers, and a preflighted PATCH with If-Match succeeds', async (t) => {
    const page = await open(listed)
    const result = await page.evaluate(async ({ api, email, password }) => {
      const login = await fetch(`${api}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
      const tokens = await login.json() as { access_token: string }
      const auth = { authorization: `Bearer ${tokens.access_token}` }
      const created = await fetch(`${api}/notes`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'x-request-id': 'browser-create-1' }, body: JSON.stringify({ title: 'from the browser' }) })
      const note = await created.json() as { id: string }
      const patched = await fetch(`${api}/notes/${note.id}`, {
        method: 'PATCH',
        headers: { ...auth, 'content-type': 'application/json', 'if-match': created.headers.get('etag') ?? '', 'x-csrf-token': 'not-needed-with-a-bearer-token' },
        body: JSON.stringify({ title: 'patched from the browser' })
      })
      const stale = await fetch(`${api}/notes/${note.id}`, {
        method: 'PATCH',
        headers: { ...auth, 'content-type': 'application/json', 'if-match': created.headers.get('etag') ?? '' },
        body: JSON.stringify({ title: 'lost update' })
      })
      const read = await fetch(`${api}/notes/${note.id}`, { headers: auth, credentials: 'include' })
      const h = (r: Response, name: string) => r.headers.get(name)
      return {
        loginStatus: login.status,
        created: { status: created.status, requestId: h(created, 'x-request-id'), etag: h(created, 'etag'), location: h(created, 'location'), limit: h(created, 'x-ratelimit-limit'), remaining: h(created, 'x-ratelimit-remaining'), reset: h(created, 'x-ratelimit-reset'), csp: h(created, 'content-security-policy') },
        patched: { status: patched.status, etag: h(patched, 'etag'), body: await patched.json() as Record<string, any> },
        stale: { status: stale.status, body: await stale.json() as Record<string, any> },
        read: { status: read.status, body: await read.json() as Record<string, any> }
      }
    }, { api, email: user.email, password: TEST_PASSWORD }).catch(explain(page))
    t.equal(result.loginStatus, 200, 'the JSON login (preflighted) is answered and read')
    t.equal(result.created.status, 201)
    t.equal(result.created.requestId, 'browser-create-1', 'the request id is readable (exposed)')
    t.match(result.created.etag, /^"/, 'ETag is readable')
    t.match(result.created.location, /^\/notes\//, 'Location is readable')
    t.match(result.created.limit, /^\d+$/, 'x-ratelimit-limit is readable')
    t.match(result.created.remaining, /^\d+$/, 'x-ratelimit-remaining is readable')
    t.match(result.created.reset, /^\d+$/, 'x-ratelimit-reset is readable')
    t.equal(result.created.csp, null, 'a header that is not exposed stays hidden from script (the browser enforces CORS)')
    t.equal(result.patched.status, 200, 'PATCH with If-Match and X-CSRF-TOKEN passes its preflight and succeeds')
    t.equal(result.patched.body.title, 'patched from the browser')
    t.not(result.patched.etag, result.created.etag, 'a new ETag, readable')
    t.equal(result.stale.status, 412, 'the stale If-Match reaches the server and is refused')
    t.equal(result.stale.body.code, 'PRECONDITION_FAILED', 'and the error body is readable')
    t.equal(result.read.body.title, 'patched from the browser')
  })

  t.test('the cookie flow: login sets the cookies, page script reads the CSRF cookie and sends it back as X-CSRF-TOKEN', async (t) => {
    const page = await open(listed)
    const result = await page.evaluate(async ({ api, email, password }) => {
      const login = await fetch(`${api}/auth/login`, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
      const csrf = document.cookie.split('; ').find((c: string) => c.startsWith('csrf_access_token='))?.slice('csrf_access_token='.length)
      const visible = document.cookie.split('; ').map((c: string) => c.split('=')[0])
      const me = await fetch(`${api}/auth/me`, { credentials: 'include' })
      const withoutHeader = await fetch(`${api}/notes`, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'no csrf header' }) })
      const created = await fetch(`${api}/notes`, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf ?? '' }, body: JSON.stringify({ title: 'by cookie' }) })
      const note = await created.json() as { id: string }
      const patched = await fetch(`${api}/notes/${note.id}`, { method: 'PATCH', credentials: 'include', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf ?? '', 'if-match': created.headers.get('etag') ?? '' }, body: JSON.stringify({ body: 'changed by cookie' }) })
      return {
        loginStatus: login.status,
        csrf,
        visible,
        me: { status: me.status, body: await me.json() as Record<string, any> },
        withoutHeader: { status: withoutHeader.status, body: await withoutHeader.json() as Record<string, any> },
        created: created.status,
        patched: { status: patched.status, body: await patched.json() as Record<string, any> }
      }
    }, { api, email: user.email, password: TEST_PASSWORD }).catch(explain(page))
    t.equal(result.loginStatus, 200)
    t.match(result.csrf, /^[\w-]{16,}$/, 'the readable CSRF cookie is there for page script')
    t.notOk(result.visible.includes('access_token_cookie'), 'the JWT cookie is HttpOnly: script cannot see it')
    t.equal(result.me.status, 200, 'a credentialed GET is authenticated by cookie')
    t.equal(result.me.body.email, user.email)
    t.equal(result.withoutHeader.status, 401, 'a cookie-authenticated POST without X-CSRF-TOKEN is refused')
    t.equal(result.withoutHeader.body.code, 'AUTH_CSRF_FAILED')
    t.equal(result.created, 201, 'with the double-submit header it succeeds')
    t.equal(result.patched.status, 200, 'and so does a PATCH with If-Match')
    t.equal(result.patched.body.body, 'changed by cookie')
    const cookies = await browser.cookies(api)
    t.same(cookies.filter((c) => c.name === 'access_token_cookie').map((c) => [c.httpOnly, c.sameSite]), [[true, 'Lax']], 'the browser stored the JWT cookie HttpOnly, SameSite=Lax')
  })

  t.test('from an unlisted origin the browser blocks every read, and nothing it sends with the cookies is acted on', async (t) => {
    // The browser holds a logged-in user's cookies from the test before.
    t.ok((await browser.cookies(api)).some((c) => c.name === 'access_token_cookie'), 'the victim\'s cookies are in the browser')
    const { rows: [before] } = await app.pg.query<{ count: string, latest: string }>('SELECT count(*)::text AS count, max(updated_at)::text AS latest FROM notes')
    const from = logs.length
    const page = await open(unlisted)
    const result = await page.evaluate(async ({ api }) => {
      const attempt = async (url: string, init: RequestInit) => {
        try {
          const res = await fetch(url, { credentials: 'include', ...init })
          return `read ${res.status}`
        } catch (err) {
          return `blocked: ${(err as Error).name}`
        }
      }
      const csrf = document.cookie.split('; ').find((c: string) => c.startsWith('csrf_access_token='))?.slice('csrf_access_token='.length) ?? ''
      const json = { 'content-type': 'application/json' }
      const results = {
        csrfCookieReadable: csrf !== '',
        me: await attempt(`${api}/auth/me`, {}),
        list: await attempt(`${api}/notes`, {}),
        jsonPost: await attempt(`${api}/notes`, { method: 'POST', headers: { ...json, 'x-csrf-token': csrf }, body: JSON.stringify({ title: 'forged' }) }),
        simplePost: await attempt(`${api}/notes`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ title: 'forged as text' }) }),
        formPost: await attempt(`${api}/notes`, { method: 'POST', body: new URLSearchParams({ title: 'forged form' }) }),
        logout: await attempt(`${api}/auth/logout`, { method: 'POST' }),
        del: await attempt(`${api}/notes/00000000-0000-4000-8000-000000000000`, { method: 'DELETE', headers: { 'x-csrf-token': csrf } })
      }
      // A classic cross-site form post, which no CORS rule stops: the browser navigates.
      const form = document.createElement('form')
      form.method = 'POST'
      form.action = `${api}/notes`
      form.enctype = 'text/plain'
      const input = document.createElement('input')
      input.name = '{"title":"forged by form","x":"'
      input.value = '"}'
      form.append(input)
      document.body.append(form)
      return results
    }, { api }).catch(explain(page))
    // The form navigates the page away; wait for the API's answer to it.
    const navigation = page.waitForResponse((r) => r.url() === `${api}/notes` && r.request().method() === 'POST' && r.request().resourceType() === 'document')
    await page.evaluate(() => document.forms[0]!.submit())
    const formResponse = await navigation
    t.ok(result.csrfCookieReadable, 'the unlisted page on the same host can read the CSRF cookie (cookies are not isolated by port)')
    for (const [name, outcome] of Object.entries(result).filter(([k]) => k !== 'csrfCookieReadable')) {
      t.equal(outcome, 'blocked: TypeError', `${name}: the browser hides the response (or never sends the request)`)
    }
    t.ok(formResponse.status() >= 400, `the form post is refused (${formResponse.status()})`)

    const seen = logs.slice(from).filter((l) => l.msg === 'request completed')
    const summary = seen.map((l) => `${l.method} ${l.url} ${l.statusCode}`)
    t.comment(`what the server saw from the unlisted page: ${summary.join(', ')}`)
    t.same(seen.filter((l) => ['POST', 'PATCH', 'DELETE'].includes(l.method) && l.statusCode < 400), [], 'no write was acted on')
    t.notOk(seen.some((l) => l.method === 'POST' && l.url === '/notes' && l.statusCode === 201), 'no note was created')
    t.notOk(seen.some((l) => l.method === 'DELETE'), 'the preflighted DELETE was never sent')
    t.ok(seen.some((l) => l.method === 'OPTIONS'), 'the browser asked (preflight) before the JSON POST and the DELETE')
    const { rows: [after] } = await app.pg.query<{ count: string, latest: string }>('SELECT count(*)::text AS count, max(updated_at)::text AS latest FROM notes')
    t.same(after, before, 'the notes table is unchanged')
    const me = await app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: (await browser.cookies(api)).map((c) => `${c.name}=${c.value}`).join('; ') } })
    t.equal(me.statusCode, 200, 'the session was not logged out by the forged POST /auth/logout')
  })
}
