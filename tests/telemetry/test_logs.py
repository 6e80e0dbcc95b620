"""JSON log lines: trace context on every event, secrets masked wherever they appear."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from telemetry.logs import configure_logging
from telemetry.redaction import REDACTED, secrets


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test here reconfigures logging; put the defaults back for the tests after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def capture() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("info", stream)
    return stream


def test_events_are_json_with_trace_ids():
    """Inside a span, an event carries that span's trace_id and span_id."""
    stream = capture()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("tick") as span:
        structlog.get_logger().info("tick_started", tick=3)
    line = json.loads(stream.getvalue().splitlines()[-1])
    ctx = span.get_span_context()
    assert line["event"] == "tick_started" and line["tick"] == 3
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")


def test_registered_secrets_and_secret_keys_are_masked():
    """A registered key is masked inside any value; secret-named fields are masked whole."""
    stream = capture()
    key = "0x" + "5e" * 32
    secrets.register(key)
    structlog.get_logger().info(
        "oops", detail=f"failed with {key}", nested={"k": [key[2:]]}, password="hunter22"
    )
    text = stream.getvalue()
    assert key[2:] not in text and "hunter22" not in text
    line = json.loads(text.splitlines()[-1])
    assert line["password"] == REDACTED and REDACTED in line["detail"]


def test_library_logging_is_json_too():
    """Standard-library warnings (uvicorn, APScheduler) come out as JSON lines."""
    stream = capture()
    logging.getLogger("apscheduler.scheduler").warning("job skipped")
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["event"] == "job skipped" and line["level"] == "warning"


def test_collector_config_wires_every_signal():
    """deploy/otel-collector.yaml receives OTLP and every pipeline uses defined parts."""
    import yaml

    config = yaml.safe_load((Path(__file__).parents[2] / "deploy/otel-collector.yaml").read_text())
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        assert set(pipeline["exporters"]) <= set(config["exporters"])
        assert set(pipeline["processors"]) <= set(config["processors"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


class _SlowStream(io.StringIO):
    """A stream that gives other threads a turn inside every write, as a busy machine does."""

    def write(self, text: str) -> int:
        time.sleep(0.0005)
        return super().write(text)


def test_lines_from_two_threads_never_merge():
    """structlog events and a library's warnings from another thread stay whole lines."""
    stream = _SlowStream()
    configure_logging("info", stream)

    def library() -> None:
        for i in range(100):
            logging.getLogger("some.exporter").warning("export failed %d", i)

    other = threading.Thread(target=library)
    other.start()
    for i in range(100):
        structlog.get_logger().info("tick_finished", tick=i)
    other.join()
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events.count("tick_finished") == 100
    assert sum(e.startswith("export failed") for e in events) == 100
