-- Accounts (SPEC §4). Emails are stored normalised (trimmed, lower-cased).
CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL UNIQUE CHECK (email = lower(btrim(email)) AND length(email) BETWEEN 3 AND 320),
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
