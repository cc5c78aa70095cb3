-- A node-level failure in a node's last report: why its agent can't drive
-- the IPsec daemon at all (NULL while it can).
ALTER TABLE node_status ADD COLUMN node_error TEXT;
