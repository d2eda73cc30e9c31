-- Login throttling per account (docs/contract.md, "When dependencies fail"), when
-- Redis is not configured: one fixed window of attempts per normalised email,
-- shared by every replica. The key is a keyed hash of the email, so the table never
-- holds the addresses tried (known or not); a success deletes the row.
CREATE TABLE login_attempts (
  account_key text PRIMARY KEY,
  attempts integer NOT NULL CHECK (attempts > 0),
  window_ends timestamptz NOT NULL
);

CREATE INDEX login_attempts_window_ends ON login_attempts (window_ends);
