-- The realization fan-out reads the gateways whose generation moved since the
-- last it saw (`WHERE generation > $1`) on every commit: an index on the
-- generation makes that read cost the gateways that changed, not every gateway.
CREATE INDEX gateway_generations_generation ON gateway_generations (generation);
