-- Nodes may authenticate with a client certificate (mutual TLS) instead of a
-- bearer token: `cert_sha256` is the lowercase hex SHA-256 of the certificate's
-- DER. A node has a token, a certificate, or both; `token_hash` becomes
-- nullable. Neither SQLite nor portable SQL can drop NOT NULL in place, so
-- `nodes` is rebuilt; `node_status` (which references it, ON DELETE CASCADE) is
-- set aside first so that dropping the old table deletes no reports.
CREATE TABLE nodes_v3 (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    gateway_id TEXT NOT NULL REFERENCES resources (id),
    token_hash TEXT UNIQUE,
    cert_sha256 TEXT UNIQUE,
    created_at BIGINT NOT NULL,
    CHECK (token_hash IS NOT NULL OR cert_sha256 IS NOT NULL)
);
INSERT INTO nodes_v3 (id, name, gateway_id, token_hash, cert_sha256, created_at)
    SELECT id, name, gateway_id, token_hash, NULL, created_at FROM nodes;

CREATE TABLE node_status_keep AS SELECT * FROM node_status;
DROP TABLE node_status;
DROP TABLE nodes;
ALTER TABLE nodes_v3 RENAME TO nodes;
CREATE INDEX nodes_gateway ON nodes (gateway_id);

CREATE TABLE node_status (
    node_id TEXT PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    realized_generation BIGINT,
    last_seen BIGINT NOT NULL,
    failures TEXT NOT NULL,
    tunnels TEXT NOT NULL,
    agent TEXT
);
INSERT INTO node_status (node_id, realized_generation, last_seen, failures, tunnels, agent)
    SELECT node_id, realized_generation, last_seen, failures, tunnels, agent FROM node_status_keep;
DROP TABLE node_status_keep;
