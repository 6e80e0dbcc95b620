"""OpenTelemetry tracing set-up.

Spans are always created (so that log lines carry trace ids); they leave the process only when
an exporter is configured through the standard `OTEL_*` variables
(`OTEL_TRACES_EXPORTER=otlp` or `OTEL_EXPORTER_OTLP_ENDPOINT`). The batch processor is bounded
and drops on overload, so tracing never blocks the loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from telemetry.errors import TelemetryError

_provider: TracerProvider | None = None


def _exporter_from_env(env: Mapping[str, str]) -> SpanExporter | None:
    names = env.get("OTEL_TRACES_EXPORTER", "")
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    if not wanted and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        wanted = {"otlp"}
    wanted.discard("none")
    if not wanted:
        return None
    if wanted != {"otlp"}:
        raise TelemetryError(f"OTEL_TRACES_EXPORTER={names!r}: only 'otlp' or 'none' is supported")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure_tracing(
    service_name: str,
    attributes: Mapping[str, str | int] | None = None,
    env: Mapping[str, str] | None = None,
) -> TracerProvider:
    """Install the process's tracer provider once and return it."""
    global _provider  # noqa: PLW0603 -- the provider is process-wide by OpenTelemetry's design
    if _provider is not None:
        return _provider
    resource = Resource.create({"service.name": service_name, **(attributes or {})})
    provider = TracerProvider(resource=resource)
    exporter = _exporter_from_env(os.environ if env is None else env)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    """Flush and stop exporters; never raises."""
    if _provider is not None:
        try:
            _provider.shutdown()
        except Exception:
            return
