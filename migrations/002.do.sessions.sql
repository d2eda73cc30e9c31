-- Login sessions (SPEC §3). A session is the family of tokens issued from one
-- login: every token of it carries `sid`. Only the current refresh token's jti is
-- kept, so presenting an older one (reuse after rotation) is detectable; revoking
-- the session refuses every token of it. Rows live until expires_at, the absolute
-- end of the session (login + JWT_REFRESH_TOKEN_EXPIRES), then are pruned.
CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  refresh_jti uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  refreshed_at timestamptz,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_reason text CHECK (revoked_reason IN ('logout', 'refresh_reuse', 'admin')),
  CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
-- Every replica loads the revoked, unexpired sessions at start and after a reconnect.
CREATE INDEX sessions_revoked_idx ON sessions (expires_at) WHERE revoked_at IS NOT NULL;
