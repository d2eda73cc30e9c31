import { ApiError } from './errors.js'

// Credentials are compared as entered, never collapsed (docs/auth.md, "Emails and
// passwords as entered"): every spelling of one credential becomes one string, and
// two different credentials never become the same one. RFC 8265 gives the rules;
// no maintained PRECIS library exists for Node.js, and the few rules needed here are
// String.prototype.normalize and Unicode property escapes.

/** Code points of Unicode's Default_Ignorable_Code_Point property: zero-width spaces and joiners, bidi controls, variation selectors, fillers. */
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/u
/** Control characters (Cc), lone surrogates (Cs), noncharacters. */
const CONTROL = /[\p{Cc}\p{Cs}\p{Noncharacter_Code_Point}]/u
/** RFC 8264 §9.14 Spaces: every space separator other than U+0020. */
const NON_ASCII_SPACE = /(?!\u0020)\p{Zs}/gu
/**
 * RFC 8264 §4.3, the FreeformClass that OpaqueString builds on: letters, marks,
 * digits, punctuation, symbols and spaces, and none of its disallowed code points:
 * old Hangul jamo (§9.9), unassigned ones (in none of these categories), ignorable
 * ones (§9.13). The two joiners (U+200C, U+200D) are allowed: the RFC allows them in
 * contexts (RFC 5892 Appendix A.1, A.2) that need data JavaScript does not expose,
 * and refusing them would refuse Persian words and emoji sequences.
 */
const FREEFORM = /^(?:(?![\p{Default_Ignorable_Code_Point}\u1100-\u11FF\uA960-\uA97F\uD7B0-\uD7FF])[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]|[\u200C\u200D])+$/u

// After normalisation, as before it (schemas/auth.ts): one @, no whitespace, 3 to 320 characters.
const EMAIL_SHAPE = /^[^\s@]+@[^\s@.][^\s@]*$/u
const EMAIL_MAX = 320
const PASSWORD_MIN = 12
const PASSWORD_MAX = 128

function refuse (field: 'email' | 'password', message: string): ApiError {
  return new ApiError('VALIDATION_ERROR', `body/${field} ${message}`)
}

const codePoints = (value: string): number => [...value].length

/**
 * An email as the account's key, after RFC 8265's UsernameCaseMapped idea (§3.3):
 * width and compatibility forms mapped (NFKC: ａｄｍｉｎ is admin), lower-cased by
 * Unicode's rules (here, never by the database's collation), normalised again
 * (lower-casing can leave a string that is not NFKC), and trimmed. An email holding
 * control, zero-width or other default-ignorable characters is refused: they would
 * make accounts that look the same and are not.
 */
export function normaliseEmail (entered: string): string {
  if (!entered.isWellFormed() || CONTROL.test(entered)) throw refuse('email', 'must not contain control characters or lone surrogates')
  const email = entered.normalize('NFKC').toLowerCase().normalize('NFKC').trim()
  if (IGNORABLE.test(entered) || IGNORABLE.test(email) || CONTROL.test(email)) throw refuse('email', 'must not contain zero-width or other invisible characters')
  if (!EMAIL_SHAPE.test(email) || codePoints(email) > EMAIL_MAX) throw refuse('email', 'must be an email address of at most 320 characters')
  return email
}

/**
 * A password as it is hashed and verified, after RFC 8265's OpaqueString profile
 * (§4.2): other spaces mapped to U+0020, then NFC, so that every way of typing one
 * password is that password; case and everything else kept. Lone surrogates (which
 * UTF-8 would turn into U+FFFD, making different passwords one), control characters
 * and the rest of what the profile disallows are refused, never altered.
 */
export function preparePassword (entered: string): string {
  if (!entered.isWellFormed() || CONTROL.test(entered)) throw refuse('password', 'must not contain control characters or lone surrogates')
  const password = entered.replace(NON_ASCII_SPACE, ' ').normalize('NFC')
  if (!FREEFORM.test(password)) throw refuse('password', 'must not contain invisible or unassigned characters')
  const length = codePoints(password)
  if (length < PASSWORD_MIN || length > PASSWORD_MAX) throw refuse('password', `must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`)
  return password
}

/** The credentials of /auth/register and /auth/login as the service compares them; a 400 when they cannot be. */
export function credentialsOf (body: { email: string, password: string }): { email: string, password: string } {
  return { email: normaliseEmail(body.email), password: preparePassword(body.password) }
}
