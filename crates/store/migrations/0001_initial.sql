-- vpnaas schema. Portable SQL (SQLite and PostgreSQL): TEXT ids, BIGINT epoch-ms times.

-- Single-row counters; 'generation' is the global, monotonic generation sequence.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('generation', 0);

-- Every VPN object, gateway and subnet: metadata in columns, the kind-specific body
-- as a JSON document, the secret (PSK) encrypted with AES-256-GCM in its own column.
CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    body TEXT NOT NULL,
    secret TEXT,
    revision BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX resources_kind_project ON resources (kind, project_id);

-- Referential integrity between resources: src uses dst. The database itself
-- refuses to delete a referenced row, even if a code path forgot to check.
CREATE TABLE resource_refs (
    src_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    dst_id TEXT NOT NULL REFERENCES resources (id),
    PRIMARY KEY (src_id, dst_id)
);
CREATE INDEX resource_refs_dst ON resource_refs (dst_id);

-- Request-id log: which generation a write got and which objects it touched.
CREATE TABLE requests (
    request_id TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE request_entities (
    request_id TEXT NOT NULL REFERENCES requests (request_id) ON DELETE CASCADE,
    entity_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    op TEXT NOT NULL,
    PRIMARY KEY (request_id, entity_id)
);
CREATE INDEX request_entities_entity ON request_entities (entity_id);

-- Deleted objects, so realization can tell "deleted at generation G" from "never existed".
CREATE TABLE tombstones (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    project_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL
);

-- Identity (Keystone v3 subset).
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE role_assignments (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, project_id, role)
);
-- Only a SHA-256 of each token is stored.
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    audit_id TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX tokens_expires ON tokens (expires_at);
