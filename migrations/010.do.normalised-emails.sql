-- Emails are normalised by the service (lib/credentials.ts: NFKC, Unicode
-- lower-casing, trimmed), no longer by lower(), whose result depends on the
-- database's collation (docs/auth.md, "Emails and passwords as entered"). The check
-- keeps what SQL can say without a collation.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_check;
ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email = btrim(email) AND length(email) BETWEEN 3 AND 320);

-- Emails stored before were trimmed and lower()ed only: they are normalised as the
-- service now does it (with ICU's root lower-casing, the rules JavaScript follows,
-- when this PostgreSQL has ICU). Where several accounts now share one email, the one
-- already holding it keeps it, else the oldest; the others are left as they are
-- (no login reaches them any more) and counted in a warning.
DO $$
DECLARE
  icu text := CASE WHEN EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN 'COLLATE "und-x-icu"' ELSE '' END;
  skipped bigint;
BEGIN
  IF current_setting('server_encoding') <> 'UTF8' THEN
    RAISE WARNING 'emails were not normalised again: the database encoding is %, not UTF8', current_setting('server_encoding');
    RETURN;
  END IF;
  EXECUTE format($sql$
    CREATE TEMPORARY TABLE email_normalised ON COMMIT DROP AS
    SELECT id, email, target,
           row_number() OVER (PARTITION BY target ORDER BY (email = target) DESC, created_at, id) AS rank
    FROM (SELECT id, email, created_at, btrim(normalize(lower(normalize(email, NFKC) %s), NFKC)) AS target FROM users) AS u
  $sql$, icu);
  UPDATE users SET email = n.target
  FROM email_normalised n
  WHERE users.id = n.id AND n.rank = 1 AND users.email <> n.target
    AND length(n.target) BETWEEN 3 AND 320
    AND NOT EXISTS (SELECT 1 FROM users other WHERE other.email = n.target AND other.id <> n.id);
  SELECT count(*) INTO skipped FROM email_normalised n JOIN users USING (id) WHERE users.email <> n.target;
  IF skipped > 0 THEN
    RAISE WARNING '% account(s) keep an email that is not normalised, most because another account holds its normalised form (docs/auth.md)', skipped;
  END IF;
END
$$;
