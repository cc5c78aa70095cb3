-- Transport nodes (gateway nodes running the agent) and what they report.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    gateway_id TEXT NOT NULL REFERENCES resources (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX nodes_gateway ON nodes (gateway_id);

-- The latest report of each node (every report is a heartbeat).
CREATE TABLE node_status (
    node_id TEXT PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    realized_generation BIGINT,
    last_seen BIGINT NOT NULL,
    failures TEXT NOT NULL,
    tunnels TEXT NOT NULL,
    agent TEXT
);

-- Per gateway: the generation of the last committed change to anything its nodes carry.
CREATE TABLE gateway_generations (
    gateway_id TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
