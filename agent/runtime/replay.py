"""`forager telemetry replay`: send stored tick records to the collector again.

The store is the durable copy; OTLP export may have dropped records while a collector was down.
Replaying re-emits them as the same `forager.tick` events, to the collector the standard
`OTEL_*` variables name.
"""

from __future__ import annotations

from pathlib import Path

from agent.errors import ConfigError
from agent.runtime.reporting import SNAPSHOT_EVENT
from agent.runtime.store import Store
from telemetry.events import emit_event
from telemetry.otel import Telemetry, configure_telemetry

_PAGE = 500


def replay(data_dir: Path, since: int = 0) -> int:
    """Re-emit every tick record from `since`; return how many were handed to the exporter."""
    path = data_dir / "state.sqlite"
    if not path.is_file():
        raise ConfigError(f"data dir {data_dir} has no state.sqlite (expected an agent's data dir)")
    store = Store(path)
    agent_id = store.agent_id()
    telemetry = configure_telemetry("openforager", {"forager.agent.id": agent_id})
    if "logs" not in telemetry.exporting:
        raise ConfigError(
            "no log exporter: set OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_LOGS_EXPORTER=otlp)"
        )
    sent = _send_pages(store, telemetry, agent_id, since)
    telemetry.flush(timeout_s=30)
    telemetry.shutdown(timeout_s=10)
    store.close()
    return sent


def _send_pages(store: Store, telemetry: Telemetry, agent_id: str, since: int) -> int:
    sent, tick = 0, since
    while True:
        page = store.records(limit=_PAGE, since=tick)
        for record in page:
            emit_event(
                SNAPSHOT_EVENT, record, {"agent.id": agent_id, "forager.tick": record["tick"]}
            )
        sent += len(page)
        telemetry.flush(timeout_s=30)  # a page at a time: the export queue never overflows
        if len(page) < _PAGE:
            return sent
        tick = int(page[-1]["tick"]) + 1
