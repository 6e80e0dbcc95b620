"""What leaves the process: structured logs, traces and (later) metrics.

`telemetry` is configured once at start (`configure_logging`, `configure_tracing`); the rest of
the code uses only the structlog and OpenTelemetry APIs.
"""
