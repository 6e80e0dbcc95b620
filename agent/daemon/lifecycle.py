"""The daemon's lifecycle: start the parts, drive ticks on a scheduler, stop cleanly.

One concurrency model: ticks run one at a time on APScheduler's background thread; uvicorn
serves HTTP on its own thread and only reads the runtime; the main thread waits for a stop
(SIGTERM/SIGINT, `--ticks` reached, or death plus linger), then shuts everything down in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import IO

import structlog
import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from eth_account.signers.local import LocalAccount

from agent.config import Settings
from agent.core.decider import Decider
from agent.daemon.api import create_app
from agent.daemon.parts import Runtime
from agent.daemon.wiring import (
    Market,
    build_agent,
    build_arena,
    build_decider,
    fund_from_faucet,
    load_arena_file,
    market_from_arena,
    market_from_settings,
    model_name,
    open_wallet,
)
from agent.errors import AgentError, ConfigError, ModelError
from agent.runtime.loop import Agent
from agent.runtime.reporting import Reporter
from agent.runtime.store import Store
from arena.errors import AnvilMissing, ArenaError, SavedWorldError
from arena.local import LocalArena
from arena.world import RISK_DECIMALS, STABLE_DECIMALS, ArenaInfo
from telemetry.otel import configure_telemetry, shutdown_telemetry
from telemetry.redaction import redact_url
from wallets.chain import Chain
from wallets.errors import ChainError, ChainUnavailable, WalletError
from wallets.tokens import to_base
from wallets.transactions import TxSender

log = structlog.get_logger()

_HTTP_START_TIMEOUT_S = 10.0
EXIT_OK = 0
EXIT_START_FAILED = 2
RETRYABLE_AT_START = (ModelError, ChainError, ArenaError)
# No retry finds a binary that is not installed or mends a lost world: exit 2, named.
FATAL_AT_START = (AnvilMissing, SavedWorldError)
NEW_WORLD = "--new-world (FORAGER_ARENA__NEW_WORLD=true)"
_FUNDED_KEY = "arena_funded_at"  # store meta: this agent was funded in an embedded world


class Daemon:
    """One agent process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime(settings)
        self.runtime.controls = {
            "pause": self._pause,
            "resume": self._resume,
            "stop": self._stop_by_operator,
        }
        self.http_port: int | None = None
        self._stop = threading.Event()
        self._ticks_run = 0
        self._arena: LocalArena | None = None
        self._server: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._lock_file: IO[str] | None = None
        self._decider: Decider | None = None

    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        self._install_signal_handlers()
        code = EXIT_OK
        try:
            self._lock_data_dir()
            self._start_http()
            self._start_until_ready()
            self._wait()
        except (AgentError, WalletError, ArenaError) as exc:
            self.runtime.startup_error = str(exc)
            log.error("agent_start_failed", error=str(exc), error_type=type(exc).__name__)
            code = EXIT_START_FAILED
        finally:
            self._shutdown()
        return code

    def stop(self) -> None:
        self._stop.set()

    # start-up ----------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("stop_requested", signal=signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _lock_data_dir(self) -> None:
        """One daemon per data dir (and so per key): a second one refuses to start."""
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = (data_dir / "agent.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise ConfigError(
                f"data dir {data_dir} is in use by another forager process; "
                "one signer per key, so this one will not start"
            ) from exc
        self._lock_file = handle

    def _start_http(self) -> None:
        http = self.settings.http
        config = uvicorn.Config(
            create_app(self.runtime),
            host=http.host,
            port=http.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = self._server = uvicorn.Server(config)
        self._http_thread = threading.Thread(
            target=_serve, args=(server, http.nice), name="http", daemon=True
        )
        self._http_thread.start()
        deadline = time.monotonic() + _HTTP_START_TIMEOUT_S
        while not server.started:
            if not self._http_thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"HTTP could not listen on {http.host}:{http.port} (in use?)")
            time.sleep(0.01)
        self.http_port = int(server.servers[0].sockets[0].getsockname()[1])
        log.info("http_listening", host=http.host, port=self.http_port)

    def _start_until_ready(self) -> None:
        """Start the agent; if the model or the chain is not there yet, keep serving and retry.

        A provider closes a lease whose container keeps crashing, so these failures do not end
        the process: `/readyz` says what is wrong until a retry succeeds. Errors an operator
        must fix (settings, keystore, a locked data dir, no anvil, a lost or unreadable saved
        world) still stop it with exit code 2.
        """
        while not self._stop.is_set():
            try:
                self._start_agent()
            except FATAL_AT_START:
                raise
            except RETRYABLE_AT_START as exc:
                self.runtime.startup_error = str(exc)
                retry = self.settings.start_retry_s
                log.error(
                    "agent_start_failed",
                    error=str(exc),
                    error_type=type(exc).__name__,
                    retry_in_s=retry,
                )
                self._stop.wait(retry)
                continue
            self.runtime.startup_error = None
            return

    def _start_agent(self) -> None:
        try:
            self._assemble()
        except BaseException:
            if self._arena is not None:  # a half-built world is taken down before a retry
                self._arena.down()
                self._arena = None
            if self._decider is not None:
                self._decider.close()
                self._decider = None
            raise

    def _assemble(self) -> None:
        settings = self.settings
        store = self._open_store()
        self.runtime.telemetry = configure_telemetry(
            settings.telemetry.service_name, _resource(settings, store.agent_id())
        )
        market, account = self._open_market()
        decider = self._decider = build_decider(settings)
        agent, chain, sender = build_agent(settings, market, account, decider, store)
        agent.on_record = Reporter(agent.agent_id).report
        self._publish(agent, chain, sender, account.address, market)
        if self._arena is not None:
            self._arena.start_weather()
        if agent.alive:
            self._start_scheduler()
        else:
            self._linger()

    def _open_store(self) -> Store:
        settings = self.settings
        store = self.runtime.store or Store(settings.data_dir / "state.sqlite")
        self.runtime.store = store
        if settings.parent_id and store.get("parent_id") is None:
            store.put("parent_id", settings.parent_id)
        return store

    def _open_market(self) -> tuple[Market, LocalAccount]:
        """The market (a shared arena file, an arena of our own, or live) and a funded wallet."""
        settings = self.settings
        shared = None
        if settings.arena.file is not None:
            shared = load_arena_file(settings.arena.file)
            market = market_from_arena(shared)
        elif settings.uses_arena:
            market = market_from_arena(self._open_own_arena())
        else:
            market = market_from_settings(settings)
        account = open_wallet(settings, create_if_missing=settings.uses_arena)
        if self._arena is not None:
            self._fund_if_new(self._arena, account.address)
        if shared is not None:
            fund_from_faucet(settings, shared, account.address)
        return market, account

    def _open_own_arena(self) -> ArenaInfo:
        """The embedded arena, restored from the data dir; never a new world over a life that
        had one unless the operator allows it (a new world would endow the agent again)."""
        arena = self._arena = build_arena(self.settings)
        self._check_world(arena)
        try:
            return arena.up()
        except SavedWorldError as exc:
            raise SavedWorldError(f"{exc}, or start with {NEW_WORLD}") from exc

    def _check_world(self, arena: LocalArena) -> None:
        store = self.runtime.store
        if self.settings.arena.new_world or arena.holds_world() or store is None:
            return
        age, funded = store.age(), store.get(_FUNDED_KEY)
        if age == 0 and funded is None:
            return  # a first start: a new world is what it needs
        raise SavedWorldError(
            f"data dir {self.settings.data_dir} holds an agent that lived ({age} ticks) but not "
            f"its world: {arena.snapshot_file} is missing, and a new world would fund the agent "
            f"again. Restore the file, or start with {NEW_WORLD} to deploy a new world anyway"
        )

    def _publish(
        self, agent: Agent, chain: Chain, sender: TxSender, address: str, market: Market
    ) -> None:
        """Hand the started parts to HTTP (which only reads them) and say the agent is up."""
        runtime = self.runtime
        runtime.chain, runtime.sender, runtime.address = chain, sender, address
        runtime.chain_id, runtime.landlord = market.chain_id, market.landlord
        runtime.agent = agent
        log.info(
            "agent_started",
            agent_id=agent.agent_id,
            address=address,
            model=agent.model,
            rpc_url=redact_url(market.rpc_url),
            age=agent.age,
            alive=agent.alive,
            arena=self._arena is not None,
        )

    def _fund_if_new(self, arena: LocalArena, address: str) -> None:
        assert arena.w3 is not None, "arena is up"
        if not arena.fresh and arena.w3.eth.get_balance(address) > 0:  # type: ignore[arg-type]
            return
        a = self.settings.arena
        arena.fund(
            address,
            native_wei=to_base(a.agent_native, 18),
            stable=to_base(a.agent_stable, STABLE_DECIMALS),
            risk=to_base(a.agent_risk, RISK_DECIMALS),
        )
        if self.runtime.store is not None:
            self.runtime.store.put(_FUNDED_KEY, str(time.time()))

    def _pause(self) -> None:
        if self._scheduler is not None and not self.runtime.paused:
            self._scheduler.pause()
        self.runtime.paused = True
        log.warning("agent_paused", by="operator")

    def _resume(self) -> None:
        agent = self.runtime.agent
        if self._scheduler is not None and agent is not None and agent.alive:
            self._scheduler.resume()
        self.runtime.paused = False
        log.warning("agent_resumed", by="operator")

    def _stop_by_operator(self) -> None:
        log.warning("stop_requested", by="operator")
        self._stop.set()

    def _start_scheduler(self) -> None:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            self._tick_job,
            "interval",
            seconds=self.settings.interval_s,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            id="tick",
        )
        scheduler.start()
        self._scheduler = scheduler
        self.runtime.scheduler_running = True

    # running -----------------------------------------------------------------------------

    def _tick_job(self) -> None:
        agent = self.runtime.agent
        if agent is None or self._stop.is_set():
            return
        try:
            record = agent.tick()
            if self.runtime.sender is not None:
                self.runtime.sender.audit()
        except ChainUnavailable as exc:
            # Nothing can be sensed or sent: the agent holds, and tries again next tick.
            self.runtime.chain_error = str(exc)
            log.warning("tick_held", reason="chain unreachable", error=str(exc))
            return
        except Exception as exc:
            log.exception("tick_failed", error=str(exc))
            return
        self.runtime.chain_error = None
        if record is None:
            return
        self._ticks_run += 1
        if not record.alive:
            self._linger()
        elif self.settings.ticks is not None and self._ticks_run >= self.settings.ticks:
            log.info("ticks_completed", ticks=self._ticks_run)
            self._stop.set()

    def _linger(self) -> None:
        """A dead agent keeps serving its state for a while, then the process exits."""
        if self._scheduler is not None:
            self._scheduler.pause()
        linger = self.settings.linger_s
        log.info(
            "agent_lingering",
            linger_s=linger,
            cause=self.runtime.agent and self.runtime.agent.death_cause,
        )
        timer = threading.Timer(linger, self._stop.set)
        timer.daemon = True
        timer.start()

    def _wait(self) -> None:
        while not self._stop.wait(0.2):
            pass

    # shutdown ----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.runtime.stopping = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)  # finishes the tick in progress
            self.runtime.scheduler_running = False
        if self._decider is not None:
            self._decider.close()
        if self._arena is not None:
            try:
                self._arena.down()
            except ArenaError as exc:
                log.error("arena_stop_failed", error=str(exc))
        shutdown_telemetry()
        if self._server is not None and self._http_thread is not None:
            self._server.should_exit = True
            self._http_thread.join(timeout=10)
        if self.runtime.store is not None:
            self.runtime.store.close()
        if self._lock_file is not None:
            self._lock_file.close()
        log.info("agent_stopped", ticks=self._ticks_run)


def _serve(server: uvicorn.Server, nice: int) -> None:
    # The agent's work comes first: on Linux a thread has its own nice value, so the HTTP
    # thread yields the CPU to the tick (and llama.cpp's threads) under load.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    server.run()


def _resource(settings: Settings, agent_id: str) -> dict[str, str | int]:
    """The OpenTelemetry resource attributes that name this agent on every signal."""
    return {
        "service.instance.id": agent_id,
        "forager.agent.id": agent_id,
        "forager.generation": settings.generation,
        "forager.deployment": "arena" if settings.uses_arena else "live",
        "forager.strategy": settings.strategy,
        "forager.persona": settings.persona or "",
        "forager.model": model_name(settings),
        "forager.adapter": settings.model.lora.name if settings.model.lora else "",
    }
