-- REST API Idempotency-Key (POST /v1/instances, POST /v1/workflows/{name}/instances): the first answer
-- to a (role, key) is kept for 24 hours, so a retried request returns it instead of starting again.
--
--   df._idempotency_keys  one row per (role, key): the hash of the request (method, path, body), the
--                         status and body of the answer, when it was made
--
-- Internal: only the API's own role (the owner of df) reads and writes it, in the request's transaction
-- before and after it acts as the token's role, so no role is granted anything and row-level security
-- (enabled, as on every df table) shows a role only its own keys should one ever be granted. Rows older
-- than 24 hours are dead (the API ignores and overwrites them) and the maintenance prune deletes them.

CREATE TABLE df._idempotency_keys (
    role          text        NOT NULL,
    key           text        NOT NULL,
    request_hash  text        NOT NULL,
    status        integer     NOT NULL,
    response      jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT _idempotency_keys_pkey PRIMARY KEY (role, key),
    CONSTRAINT _idempotency_keys_key_check CHECK (length(key) BETWEEN 1 AND 255),
    CONSTRAINT _idempotency_keys_request_hash_check CHECK (request_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX _idempotency_keys_created_idx ON df._idempotency_keys (created_at);

ALTER TABLE df._idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY _idempotency_keys_owner ON df._idempotency_keys FOR ALL
    USING (role = current_user::text)
    WITH CHECK (role = current_user::text);
REVOKE ALL ON df._idempotency_keys FROM PUBLIC;
