"""Errors raised by telemetry set-up.

    TelemetryError            set-up was asked for something it cannot do (bad exporter name)

Telemetry code never raises while the agent runs: exporters and processors log and swallow
their own failures so that the loop is never taken down by what watches it.
"""


class TelemetryError(Exception):
    """Telemetry could not be configured as asked."""
