// Names shared by route schemas and plugins/swagger.ts, so a route states how it is
// authenticated once and the document shows only the schemes the configuration enables.

/** An access token in the configured header (`Authorization: Bearer <jwt>` by default). */
export const BEARER = 'bearerAuth'
/** An access token in the `access_token_cookie` cookie (with X-CSRF-TOKEN on writes). */
export const COOKIE = 'cookieAuth'
/** A service token from POST /auth/token (OAuth 2.0 client credentials). */
export const OAUTH2 = 'oauth2'

/** The request bodies of the OAuth endpoints: a form (RFC 6749 §4.4.2, what OAuth libraries and Swagger UI send), or JSON. */
export const FORM_OR_JSON = ['application/x-www-form-urlencoded', 'application/json']

export type SecurityRequirement = Record<string, string[]>

/**
 * The `security` of a route that needs an access token with these scopes: any one
 * of the token locations will do. OpenAPI 3.0 only lets OAuth 2.0 requirements
 * name scopes, so the scopes travel on that one.
 */
export function authenticated (...scopes: string[]): SecurityRequirement[] {
  return [{ [BEARER]: [] }, { [COOKIE]: [] }, { [OAUTH2]: scopes }]
}
