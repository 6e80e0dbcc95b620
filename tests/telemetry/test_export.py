"""A short real run exports its traces, metrics, logs and tick snapshots over OTLP/HTTP."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families

from telemetry import genai
from tests.conftest import REPO, ForagerProcess
from tests.telemetry.otlp_receiver import OtlpReceiver, attributes, value

TICKS = 3
STAGES = {"sense", "decide", "guard", "act", "survive", "record"}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    made = OtlpReceiver()
    yield made
    made.close()


def otel_env(endpoint: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
    }


def test_every_tick_span_metric_and_snapshot_arrives(
    tmp_path: Path, receiver: OtlpReceiver, forager: list[ForagerProcess]
):
    """Field by field: a trace per tick with its stages, GenAI attributes, metrics, snapshots."""
    agent = ForagerProcess(
        tmp_path / "data",
        "--ticks",
        str(TICKS),
        "--interval",
        "0.3",
        env=otel_env(receiver.endpoint),
    )
    forager.append(agent)
    agent.wait_event("tick_finished", tick=1)
    prometheus = agent.get("/metrics").text
    assert agent.wait() == 0

    spans = receiver.spans()
    ticks = [s for s in spans if s.name == "tick"]
    assert len(ticks) == TICKS
    assert len({s.trace_id for s in ticks}) == TICKS  # one trace per tick
    for root in ticks:
        children = {s.name for s in spans if s.trace_id == root.trace_id and s != root}
        assert children >= STAGES
        attrs = attributes(root.attributes)
        assert attrs["agent.tick"] in range(TICKS) and attrs["chain.block"] > 0
    decide = [attributes(s.attributes) for s in spans if s.name == "decide"]
    assert len(decide) == TICKS
    for attrs in decide:
        assert attrs[genai.OPERATION_NAME] == "chat"
        assert attrs[genai.PROVIDER_NAME] == "llama_cpp"
        assert attrs[genai.REQUEST_MODEL].endswith(".gguf")
        assert attrs[genai.OUTPUT_TYPE] == "json"
        assert attrs[genai.USAGE_INPUT_TOKENS] > 0 and attrs[genai.USAGE_OUTPUT_TOKENS] > 0
        assert genai.USAGE_CACHE_READ_INPUT_TOKENS in attrs
        assert attrs[genai.RESPONSE_FINISH_REASONS]
        assert genai.INPUT_MESSAGES not in attrs  # content is opt-in, off by default
    acts = [attributes(s.attributes) for s in spans if s.name == "act"]
    assert all("forager.outcome.status" in a for a in acts)

    resource = receiver.resources()[0]
    assert resource["service.name"] == "openforager"
    assert resource["deployment.environment.name"] == "test"
    assert resource["forager.agent.id"].startswith("agent-")
    assert resource["forager.model"].endswith(".gguf") and resource["forager.generation"] == 0

    metrics = receiver.metrics()
    for name in ("forager.net_worth", "forager.ticks", "forager.actions", "forager.price"):
        assert name in metrics, sorted(metrics)
    duration = metrics[genai.CLIENT_OPERATION_DURATION].histogram.data_points[0]
    assert list(duration.explicit_bounds) == list(genai.DURATION_BUCKETS)
    assert duration.count == TICKS
    usage = metrics[genai.CLIENT_TOKEN_USAGE].histogram.data_points
    assert {attributes(p.attributes)[genai.TOKEN_TYPE] for p in usage} == {"input", "output"}
    ticks_metric = metrics["forager.ticks"].sum.data_points[0]
    assert ticks_metric.as_int == TICKS

    logs = receiver.logs()
    snapshots = [r for r in logs if r.event_name == "forager.tick"]
    assert sorted(value(r.body)["tick"] for r in snapshots) == list(range(TICKS))
    body = value(snapshots[0].body)
    assert body["schema_version"] == 2 and "observation" in body and "decision" in body
    assert body["decision"]["raw"].startswith("{")
    assert "net_worth_before" in body and "fitness_delta" in body
    assert body["model"].endswith(".gguf") and body["strategy"] == "llm"
    lines = [value(r.body) for r in logs if not r.event_name]
    assert "tick_finished" in lines and "decision_made" in lines
    traced = [r for r in logs if value(r.body) == "tick_finished"]
    assert all(r.trace_id for r in traced)  # log records are correlated with their tick

    data = tmp_path / "data"
    password = (data / "keystore.password").read_text()
    key = Account.decrypt(json.loads((data / "keystore.json").read_text()), password).hex()
    exported = "".join(str(m) for reqs in receiver.requests.values() for m in reqs).lower()
    assert key.lower().removeprefix("0x") not in exported and password.lower() not in exported

    families = {f.name for f in text_string_to_metric_families(prometheus)}
    assert any(name.startswith("forager_ticks") for name in families), sorted(families)
    assert any(name.startswith("gen_ai_client_operation_duration") for name in families)


def test_collector_down_keeps_pace_and_loses_nothing_locally(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """With nothing listening at the endpoint, ticks go on and the store has every record."""
    dead = OtlpReceiver()
    endpoint = dead.endpoint
    dead.close()  # a closed port: every export fails
    data = tmp_path / "data"
    agent = ForagerProcess(data, "--ticks", "4", "--interval", "0.3", env=otel_env(endpoint))
    forager.append(agent)
    started = time.monotonic()
    assert agent.wait(timeout=300) == 0
    finished = [e for e in agent.events() if e["event"] == "tick_finished"]
    assert [e["tick"] for e in finished] == [0, 1, 2, 3], "\n".join(agent.lines)
    with sqlite3.connect(data / "state.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM ticks").fetchone()[0] == 4
    assert time.monotonic() - started < 120


def test_replay_resends_what_a_dead_collector_missed(
    tmp_path: Path, receiver: OtlpReceiver, forager: list[ForagerProcess]
):
    """Ticks recorded while no collector listened reach it later with `telemetry replay`."""
    dead = OtlpReceiver()
    endpoint = dead.endpoint
    dead.close()
    data = tmp_path / "data"
    agent = ForagerProcess(data, "--ticks", "3", "--interval", "0.3", env=otel_env(endpoint))
    forager.append(agent)
    assert agent.wait() == 0
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "telemetry", "replay", "--data-dir", str(data)],
        cwd=REPO,
        env={**os.environ, **otel_env(receiver.endpoint)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3 tick records re-sent")
    snapshots = [r for r in receiver.logs() if r.event_name == "forager.tick"]
    assert sorted(value(r.body)["tick"] for r in snapshots) == [0, 1, 2]
    with sqlite3.connect(data / "state.sqlite") as db:
        stored = json.loads(db.execute("SELECT record FROM ticks WHERE tick = 0").fetchone()[0])
    sent = next(value(r.body) for r in snapshots if value(r.body)["tick"] == 0)
    assert sent["decision"]["raw"] == stored["decision"]["raw"]
    assert sent["net_worth_after"] == stored["net_worth_after"]
