"""What a running daemon exposes to HTTP: its parts, filled in as start-up proceeds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.config import Settings
from agent.runtime.loop import Agent
from agent.runtime.store import Store
from telemetry.otel import Telemetry
from wallets.chain import Chain
from wallets.transactions import TxSender


@dataclass
class Runtime:
    """Mutable holder of the daemon's parts; HTTP handlers only read it."""

    settings: Settings
    started_at: float = field(default_factory=time.time)
    agent: Agent | None = None
    chain: Chain | None = None
    sender: TxSender | None = None
    telemetry: Telemetry | None = None
    store: Store | None = None
    address: str | None = None
    chain_id: int | None = None
    landlord: str | None = None
    scheduler_running: bool = False
    startup_error: str | None = None
    chain_error: str | None = None
    stopping: bool = False
    paused: bool = False
    controls: dict[str, Callable[[], None]] = field(default_factory=dict)
