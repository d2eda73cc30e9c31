-- The `jti` of every private_key_jwt assertion accepted, kept until the assertion
-- expires (RFC 7523 §3: a replay is refused on every replica, since all share this
-- table), then pruned.
CREATE TABLE used_client_assertions (
  client_id uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  jti text NOT NULL CHECK (length(jti) BETWEEN 1 AND 200),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX used_client_assertions_expires_at_idx ON used_client_assertions (expires_at);

-- Single access tokens revoked by POST /auth/revoke (RFC 7009), kept until they expire.
-- Every replica loads the unexpired ones at start and hears of new ones by NOTIFY.
CREATE TABLE revoked_tokens (
  jti uuid PRIMARY KEY,
  client_id uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);
