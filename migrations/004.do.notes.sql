-- Notes (SPEC §4), the sample resource. Every note belongs to one user; `version`
-- grows by one on every change and is what ETags and If-Match compare, so a
-- conditional write is a single UPDATE ... WHERE version = $n (no lost updates).
CREATE TABLE notes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  body text NOT NULL DEFAULT '' CHECK (char_length(body) <= 20000),
  -- clock_timestamp(), not now(): notes created in one transaction still get distinct, ordered times.
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  version integer NOT NULL DEFAULT 1 CHECK (version > 0)
);

-- Keyset pagination, newest first: WHERE owner_id = $1 AND (created_at, id) < ($2, $3)
-- ORDER BY created_at DESC, id DESC reads this index in order and stops at LIMIT.
CREATE INDEX notes_owner_created_id ON notes (owner_id, created_at DESC, id DESC);
