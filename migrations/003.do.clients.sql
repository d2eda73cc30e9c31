-- Service clients of the OAuth 2.0 client credentials grant (SPEC §4). Only an
-- argon2id hash of the secret is stored; the secret is shown once, at creation.
CREATE TABLE clients (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  secret_hash text NOT NULL,
  scopes text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

-- A name identifies one active client; a disabled client's name may be reused.
CREATE UNIQUE INDEX clients_active_name_idx ON clients (name) WHERE disabled_at IS NULL;
