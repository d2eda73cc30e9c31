import t, { type Test } from 'tap'
import { ApiError } from '../../lib/errors.js'
import { normaliseEmail, preparePassword } from '../../lib/credentials.js'

function refused (t: Test, fn: () => unknown, label: string): void {
  let error: unknown
  try {
    fn()
  } catch (err) {
    error = err
  }
  t.ok(error instanceof ApiError && error.code === 'VALIDATION_ERROR' && error.statusCode === 400, `${label}: refused with 400 VALIDATION_ERROR`)
}

t.test('passwords: the examples of RFC 8265 §4.3 (OpaqueString)', async (t) => {
  // Valid: prepared as they are, case and non-ASCII letters and symbols kept.
  t.equal(preparePassword('correct horse battery staple'), 'correct horse battery staple', 'ASCII space is allowed')
  t.equal(preparePassword('Correct Horse Battery Staple'), 'Correct Horse Battery Staple', 'differs by case from the previous one')
  t.not(preparePassword('Correct Horse Battery Staple'), preparePassword('correct horse battery staple'))
  // The RFC's short examples, made long enough for the 12-character minimum.
  t.equal(preparePassword('πßå πßå πßå πßå'), 'πßå πßå πßå πßå', 'non-ASCII letters are OK')
  t.equal(preparePassword('Jack of ♦s and ♣s'), 'Jack of ♦s and ♣s', 'symbols are OK')
  t.equal(preparePassword('foo\u1680bar and baz'), 'foo bar and baz', 'a non-ASCII space (OGHAM SPACE MARK) is mapped to ASCII space')
  // Invalid.
  refused(t, () => preparePassword(''), 'zero-length passwords are disallowed')
  refused(t, () => preparePassword('my cat is a \u0009by'), 'control characters like TAB are disallowed')
})

t.test('passwords: NFC, and never two different passwords made one', async (t) => {
  const nfc = 'pässwörd-ünïcödé'
  t.equal(preparePassword(nfc.normalize('NFD')), nfc, 'the decomposed spelling is the same password')
  t.equal(preparePassword('char I\u0307 and more'), 'char \u0130 and more', 'I + COMBINING DOT ABOVE is İ (NFC)')
  t.equal(preparePassword('ϐℵ compatibility ¼'), 'ϐℵ compatibility ¼', 'compatibility characters are kept (NFC, not NFKC)')
  // UTF-8 would turn each lone surrogate into U+FFFD: three passwords, one hash.
  for (const lone of ['\ud800', '\udc00', '\udbff']) refused(t, () => preparePassword(lone.repeat(12)), `lone ${escape(lone)}`)
  refused(t, () => preparePassword('abcdef\ud83dghijkl'), 'a high surrogate without its low half')
  t.equal(preparePassword('\ufffd'.repeat(12)), '\ufffd'.repeat(12), 'U+FFFD itself is a character like any other')
  t.equal(preparePassword('\u{1F510}'.repeat(12)), '\u{1F510}'.repeat(12), 'a surrogate pair is one character')
  refused(t, () => preparePassword('abcdef\u0000ghijkl'), 'NUL')
  refused(t, () => preparePassword('abcdef\u007fghijkl'), 'DEL')
  refused(t, () => preparePassword('abcdef\u200fghijkl'), 'an ignorable character (RIGHT-TO-LEFT MARK), as GnuTLS tests it')
  refused(t, () => preparePassword('abcdef\u200bghijkl'), 'a zero-width space')
  refused(t, () => preparePassword('abcdef\ue000ghijkl'), 'a private-use character (in no allowed category)')
  refused(t, () => preparePassword('abcdef\u{E01EF}ghijkl'), 'a variation selector (ignorable)')
  t.equal(preparePassword('family \u{1F468}\u200d\u{1F469}\u200d\u{1F467}!'), 'family \u{1F468}\u200d\u{1F469}\u200d\u{1F467}!', 'joiners are allowed (an emoji sequence)')
  refused(t, () => preparePassword('x'.repeat(11)), 'under 12 characters')
  refused(t, () => preparePassword('\u{1F600}'.repeat(129)), 'over 128 characters (code points, not UTF-16 units)')
  t.equal(preparePassword('\u{1F600}'.repeat(128)), '\u{1F600}'.repeat(128))
  // Twelve code points that NFC makes eleven: the length that counts is the prepared one.
  refused(t, () => preparePassword('abcdefghij' + 'e\u0301'), 'under 12 once composed')
})

t.test('emails: the examples of RFC 8265 §3.5 (UsernameCaseMapped), as local parts', async (t) => {
  t.equal(normaliseEmail('juliet@example.com'), 'juliet@example.com', 'the at-sign')
  t.equal(normaliseEmail('fussball@x.co'), 'fussball@x.co')
  t.equal(normaliseEmail('fußball@x.co'), 'fußball@x.co', 'ß is kept: lower-casing, not case folding')
  t.not(normaliseEmail('fußball@x.co'), normaliseEmail('fussball@x.co'))
  t.equal(normaliseEmail('π@x.co'), 'π@x.co')
  t.equal(normaliseEmail('Σ@x.co'), 'σ@x.co', 'GREEK CAPITAL LETTER SIGMA is lower-cased')
  t.equal(normaliseEmail('σ@x.co'), 'σ@x.co')
  t.equal(normaliseEmail('ς@x.co'), 'ς@x.co', 'FINAL SIGMA stays itself')
  refused(t, () => normaliseEmail('foo bar@x.co'), 'a space')
  refused(t, () => normaliseEmail(''), 'empty')
  t.equal(normaliseEmail('Ｊｕｌｉｅｔ@x.co'), 'juliet@x.co', 'full-width letters are mapped, and case to lower')
  // Our choice (docs/auth.md): NFKC maps compatibility characters instead of refusing them.
  t.equal(normaliseEmail('henryⅣ@x.co'), 'henryiv@x.co')
})

t.test('emails: one account for every spelling, none for invisible characters', async (t) => {
  const admin = normaliseEmail('admin@x.co')
  t.equal(normaliseEmail('ａｄｍｉｎ@x.co'), admin, 'full-width')
  t.equal(normaliseEmail('ADMIN@x.co'), admin, 'upper case')
  t.equal(normaliseEmail('  Admin@X.Co \u3000'), admin, 'trimmed, ideographic space included')
  t.equal(normaliseEmail('jose\u0301e@x.co'), normaliseEmail('jos\u00e9e@x.co'), 'NFD and NFC josée')
  t.equal(normaliseEmail('JOSÉE@x.co'), 'josée@x.co', 'non-ASCII lower-cased by the service')
  t.equal(normaliseEmail('ΣΑΣ@x.co'), normaliseEmail('σας@x.co'), 'Unicode lower-casing rules (final sigma)')
  for (const [label, email] of [
    ['a zero-width space', 'ad\u200bmin@x.co'],
    ['a zero-width joiner', 'ad\u200dmin@x.co'],
    ['a soft hyphen', 'ad\u00admin@x.co'],
    ['a byte order mark at the start (trimming would hide it)', '\ufeffadmin@x.co'],
    ['a right-to-left override', 'admin\u202e@x.co'],
    ['a Hangul filler', 'admin\u3164@x.co'],
    ['NUL', 'a\u0000dmin@x.co'],
    ['a tab', 'ad\tmin@x.co'],
    ['a lone high surrogate', '\ud800x@x.co'],
    ['another lone surrogate', '\udbffx@x.co'],
    ['a full-width at-sign making two', 'a＠b@c.co'],
    ['no at-sign', 'admin.x.co'],
    ['longer than 320 once normalised (ﬃ is ffi)', 'ﬃ'.repeat(107) + '@x.co']
  ]) refused(t, () => normaliseEmail(email as string), label as string)
  t.equal(normaliseEmail(normaliseEmail('ＡＤＭＩＮ@Ｘ.ＣＯ')), normaliseEmail('ＡＤＭＩＮ@Ｘ.ＣＯ'), 'idempotent')
})
