-- Service clients that prove themselves without a shared secret (docs/contract.md,
-- "Client assertions and workload identity"). A client has one authentication method:
-- a secret (only its argon2id hash is kept), a JWK set of its own public keys
-- (private_key_jwt, RFC 7523 §2.2), or a federated identity (migration 006).
ALTER TABLE clients ALTER COLUMN secret_hash DROP NOT NULL;
ALTER TABLE clients ADD COLUMN auth_method text NOT NULL DEFAULT 'client_secret'
  CHECK (auth_method IN ('client_secret', 'private_key_jwt', 'federated'));
ALTER TABLE clients ADD CONSTRAINT clients_secret_iff_secret_method
  CHECK ((auth_method = 'client_secret') = (secret_hash IS NOT NULL));

-- The public keys of a private_key_jwt client, one row per JWK (public members only;
-- scripts/clients.ts refuses a JWK set holding a private member). Keys never change:
-- a client with new keys is a new client.
CREATE TABLE client_keys (
  client_id uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  kid text NOT NULL CHECK (length(kid) BETWEEN 1 AND 200),
  jwk jsonb NOT NULL CHECK (jsonb_typeof(jwk) = 'object' AND NOT (jwk ?| ARRAY['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'])),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, kid)
);
