-- Federated service clients (workload identity): the client is whoever holds a token
-- of `federated_issuer` (a Kubernetes API server, any OIDC issuer) whose `sub` is
-- `federated_subject`. The issuer's keys come from `jwks_uri` when set, else from its
-- discovery document.
ALTER TABLE clients ADD COLUMN federated_issuer text CHECK (length(federated_issuer) BETWEEN 1 AND 2000);
ALTER TABLE clients ADD COLUMN federated_subject text CHECK (length(federated_subject) BETWEEN 1 AND 2000);
ALTER TABLE clients ADD COLUMN jwks_uri text CHECK (length(jwks_uri) BETWEEN 1 AND 2000);
ALTER TABLE clients ADD CONSTRAINT clients_federated_iff_identity
  CHECK ((auth_method = 'federated') = (federated_issuer IS NOT NULL AND federated_subject IS NOT NULL));
ALTER TABLE clients ADD CONSTRAINT clients_jwks_uri_only_federated
  CHECK (jwks_uri IS NULL OR auth_method = 'federated');

-- One identity is one enabled client: a token names exactly who it authenticates.
CREATE UNIQUE INDEX clients_active_federated_identity_idx ON clients (federated_issuer, federated_subject)
  WHERE disabled_at IS NULL AND auth_method = 'federated';
