-- Statistics reset baselines (NSX `POST .../sessions/{id}/statistics?action=reset`):
-- per session and node, the counters the node had reported for the session
-- when its statistics were last reset. Reads subtract them, so a reset
-- survives restarts and holds on every API replica. charon counts per CHILD
-- SA: `child_rekeys` tells a read whether the SA the baseline was taken from
-- is still the one counting.
CREATE TABLE stats_baselines (
    session_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    packets_in BIGINT NOT NULL,
    packets_out BIGINT NOT NULL,
    child_rekeys BIGINT NOT NULL,
    reset_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, node_id)
);
