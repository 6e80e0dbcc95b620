"""Errors raised by telemetry: its set-up, and the training data made from experience.

    TelemetryError            base of every telemetry error
    ├── (itself)              set-up was asked for something it cannot do (bad exporter name)
    └── DatasetError          a life's records cannot be turned into training data (an unknown
                              schema version, an unknown export format): fix the input

Telemetry code never raises while the agent runs: exporters and processors log and swallow
their own failures so that the loop is never taken down by what watches it.
"""


class TelemetryError(Exception):
    """Base of telemetry's errors; raised as itself when set-up cannot do what it was asked."""


class DatasetError(TelemetryError):
    """A life's records cannot be turned into training data."""
