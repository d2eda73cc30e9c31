-- Safe retries (docs/contract.md, "Safe retries"): the first response to each
-- Idempotency-Key, per principal, kept 24 hours. The primary key is what makes
-- concurrent first requests safe on any number of replicas: one INSERT wins, every
-- other one finds its row.
CREATE TABLE idempotency_keys (
  principal text NOT NULL,
  key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
  -- SHA-256 of the method, route and canonical JSON body: another body is another request.
  fingerprint text NOT NULL,
  state text NOT NULL CHECK (state IN ('processing', 'completed')),
  -- The request processing it, and until when: a replica that dies mid-request
  -- leaves a lease that runs out instead of a key that is in use for a day.
  lock_token uuid,
  locked_until timestamptz,
  status_code integer CHECK (status_code BETWEEN 100 AND 599),
  response_headers jsonb,
  response_body text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (principal, key),
  CHECK (state = 'processing' OR (status_code IS NOT NULL AND response_body IS NOT NULL))
);

-- The periodic clean-up deletes expired keys in batches by this index.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
