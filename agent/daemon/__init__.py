"""The daemon: one agent process. Its composition root (wiring), its lifecycle on a scheduler,
and the read-only HTTP API with the dashboard."""
