"""One agent's runtime: the tick loop and its stages (sense, act, record), the state store,
replication's nursery, and the reporter that turns each tick record into telemetry."""
