"""OpenTelemetry set-up: traces, metrics and logs, configured once from the standard variables.

- Exporters follow `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` / `OTEL_LOGS_EXPORTER`
  (`otlp` or `none`); with none named, OTLP/HTTP is used when `OTEL_EXPORTER_OTLP_ENDPOINT`
  (or a signal's own endpoint) is set. `OTEL_SDK_DISABLED=true` turns the SDK off.
- `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are honoured by the resource.
- Spans and log records leave through bounded batch processors: the loop only appends to a
  queue; when it is full, records are dropped and counted in the SDK's own
  `otel.sdk.processor.*.processed` metric (`error.type=queue_full`).
- Metrics are also kept for `GET /metrics` in Prometheus text format.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry, generate_latest

from telemetry.errors import TelemetryError

_SIGNALS = ("traces", "metrics", "logs")


@dataclass
class Telemetry:
    """The process's providers; `prometheus_text` renders the current metrics."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    logger_provider: LoggerProvider | None
    registry: CollectorRegistry
    exporting: frozenset[str]

    def prometheus_text(self) -> bytes:
        return generate_latest(self.registry)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Push what is queued, within `timeout_s` in all; never raises."""
        self._each(lambda p: p.force_flush(int(timeout_s * 1000)), timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Flush and stop every provider within `timeout_s` in all; never raises.

        Exporters retry a dead collector for a long time: the process does not wait for them
        past the budget (the records are in the local store; `forager telemetry replay`
        re-sends them).
        """
        self._each(lambda p: p.shutdown(), timeout_s)

    def _each(self, action: Callable[[Any], object], timeout_s: float) -> None:
        providers = [self.tracer_provider, self.logger_provider, self.meter_provider]
        workers = [
            threading.Thread(target=_quietly, args=(action, p), daemon=True)
            for p in providers
            if p is not None
        ]
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))


def _quietly(action: Callable[[Any], object], provider: Any) -> None:
    try:
        action(provider)
    except Exception:
        return


_current: Telemetry | None = None


def exporters_from_env(env: Mapping[str, str]) -> frozenset[str]:
    """Which signals leave the process over OTLP."""
    chosen = set()
    for signal in _SIGNALS:
        named = env.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip().lower()
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
        )
        if named not in ("", "otlp", "none"):
            raise TelemetryError(
                f"OTEL_{signal.upper()}_EXPORTER={named!r}: only 'otlp' or 'none' is supported"
            )
        if named == "otlp" or (named == "" and endpoint):
            chosen.add(signal)
    return frozenset(chosen)


def configure_telemetry(
    service_name: str,
    attributes: Mapping[str, str | int] | None = None,
    env: Mapping[str, str] | None = None,
) -> Telemetry:
    """Install the process-wide providers once and return them."""
    global _current  # noqa: PLW0603 -- OpenTelemetry providers are process-wide by design
    if _current is not None:
        return _current
    env = os.environ if env is None else env
    registry = CollectorRegistry()
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        _current = Telemetry(None, None, None, registry, frozenset())
        return _current
    base = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    resource = Resource.create({**base, **(attributes or {})})
    exporting = exporters_from_env(env)
    meter_provider = _meters(resource, registry, "metrics" in exporting)
    tracer_provider = _tracers(resource, meter_provider, "traces" in exporting)
    logger_provider = _loggers(resource, meter_provider, "logs" in exporting)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _logs.set_logger_provider(logger_provider)
    _current = Telemetry(tracer_provider, meter_provider, logger_provider, registry, exporting)
    return _current


# shutdown_on_exit=False on every provider: the daemon shuts them down itself, within a budget.


def _tracers(resource: Resource, meter_provider: MeterProvider, export: bool) -> TracerProvider:
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    if export:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(), meter_provider=meter_provider)
        )
    return provider


def _loggers(resource: Resource, meter_provider: MeterProvider, export: bool) -> LoggerProvider:
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    if export:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(), meter_provider=meter_provider)
        )
    return provider


def _meters(resource: Resource, registry: CollectorRegistry, export: bool) -> MeterProvider:
    readers: list[MetricReader] = [PrometheusMetricReader(registry=registry)]
    if export:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    return MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)


def current() -> Telemetry | None:
    return _current


def shutdown_telemetry() -> None:
    if _current is not None:
        _current.shutdown()
