"""The arena's lifecycle: start anvil, deploy or restore the world, run the weather, stop.

With a state directory the world persists, and survives a crash, not only a clean stop. The
whole world (the chain's dump, the weather's step, the arena's addresses) is one snapshot file,
written atomically (`arena.snapshot`):

- right after a new world is deployed and after each `fund`, so no one is ever funded in a
  world that is not on disk;
- every `save_interval_s` seconds (2 by default, under the default 5 s agent tick) from a
  background thread, whether the weather runs or not. The save holds the weather between two
  steps, so its step count matches the chain it dumps; it is skipped when the head block and
  the step are unchanged, and the wait grows to ten times a save's duration when dumps get slow
  (the dump holds the chain's whole history and grows with it), so saving never takes more
  than about a tenth of the time;
- at a clean stop (`down`).

A kill -9 therefore loses at most the last couple of seconds of chain: the agent's journal
re-sends any of its transactions the restored chain lacks. An unreadable snapshot raises
`SavedWorldError` and nothing is deployed over it, unless `new_world` is set: then it is
renamed aside and a fresh world is deployed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import structlog
from web3 import Web3

from arena import snapshot
from arena.anvil import Anvil
from arena.compiler import Artefact, compile_all
from arena.errors import AnvilError, ArenaError, SavedWorldError
from arena.snapshot import Snapshot
from arena.weather import (
    Flow,
    FlowParams,
    PricePath,
    ReplayPath,
    Weather,
    WeatherParams,
    pool_price,
)
from arena.world import ArenaInfo, Liquidity, deploy_world, fund

log = structlog.get_logger()


@dataclass(frozen=True)
class ArenaConfig:
    """Everything that shapes a local arena."""

    anvil: str = "anvil"
    chain_id: int = 31337
    port: int | None = None
    seed: int = 0
    liquidity_stable: Decimal = Decimal(100_000)
    start_price: Decimal = Decimal(2)
    drift: float = 0.0
    volatility: float = 0.01
    regime_switch: float = 0.0
    storm_factor: float = 3.0
    shock_prob: float = 0.0
    shock_size: float = 0.1
    replay_csv: Path | None = None
    noise: float = 0.0
    arb_strength: float = 1.0
    weather_interval_s: float = 1.0
    save_interval_s: float = 2.0  # with a state dir; 0: only after deploy, funding and stop
    new_world: bool = False  # deploy afresh over an unreadable saved world (set aside)
    state_dir: Path | None = None
    cache_dir: Path | None = None


class LocalArena:
    """A running local world."""

    def __init__(self, config: ArenaConfig) -> None:
        self.config = config
        self.anvil = Anvil(config.anvil, config.chain_id, config.port)
        self.artefacts: dict[str, Artefact] = {}
        self.info: ArenaInfo | None = None
        self.weather: Weather | None = None
        self.fresh = False
        self.w3: Web3 | None = None
        self._save_lock = threading.Lock()
        self._saved: tuple[str, int] | None = None  # (head hash, weather step) last written
        self._saver: threading.Thread | None = None
        self._stop_saving = threading.Event()

    def up(self) -> ArenaInfo:
        """Start the chain and the world; `fresh` tells whether it was deployed anew."""
        self.artefacts = compile_all(self.config.cache_dir)
        saved = self._start_chain()
        self.w3 = Web3(Web3.HTTPProvider(self.anvil.url, request_kwargs={"timeout": 30}))
        if saved is None:
            liquidity = Liquidity(self.config.liquidity_stable, self.config.start_price)
            self.info = deploy_world(self.w3, self.artefacts, liquidity, self.anvil.url)
            self.fresh = True
        else:
            self.info = dataclasses.replace(saved.info, rpc_url=self.anvil.url)
        self.weather = self._weather(self.w3, self.info, saved.weather_step if saved else 0)
        if self.fresh:
            self.save()
        self._start_saving()
        log.info(
            "arena_started",
            rpc_url=self.info.rpc_url,
            fresh=self.fresh,
            weather_step=self.weather.steps,
            price=round(self.price(), 6),
        )
        return self.info

    def _start_chain(self) -> Snapshot | None:
        """Start anvil with the saved world loaded; None when a world is to be deployed."""
        saved = self._read_saved()
        self.anvil.start()
        if saved is None:
            return None
        try:
            self.anvil.load_state(saved.chain)
        except AnvilError as exc:
            state_dir = self.config.state_dir
            if not self.config.new_world:
                raise SavedWorldError(
                    f"saved world in {state_dir}: anvil cannot load its chain ({exc}); "
                    "nothing was deployed over it: move it aside to start a new world"
                ) from exc
            self.anvil.stop()  # a half-loaded chain is not built on
            self._set_aside(str(exc))
            self.anvil.start()
            return None
        return saved

    def _read_saved(self) -> Snapshot | None:
        state_dir = self.config.state_dir
        if state_dir is None:
            return None
        try:
            return snapshot.read(state_dir)
        except SavedWorldError as exc:
            if not self.config.new_world:
                raise SavedWorldError(
                    f"{exc}; nothing was deployed over it: move it aside to start a new world"
                ) from exc
            self._set_aside(str(exc))
            return None

    def _set_aside(self, reason: str) -> None:
        assert self.config.state_dir is not None, "only a state dir holds a saved world"
        moved = snapshot.set_aside(self.config.state_dir)
        log.warning("saved_world_set_aside", reason=reason, moved_to=[str(p) for p in moved])

    def holds_world(self) -> bool:
        """Whether the state dir holds a saved world (readable or not) to restore."""
        return self.config.state_dir is not None and snapshot.holds_world(self.config.state_dir)

    @property
    def snapshot_file(self) -> Path | None:
        """Where the world is saved (None without a state dir)."""
        state_dir = self.config.state_dir
        return None if state_dir is None else state_dir / snapshot.SNAPSHOT

    def _weather(self, w3: Web3, info: ArenaInfo, done: int) -> Weather:
        """The weather, continued from the saved step when the world was restored."""
        c = self.config
        path = price_path(c)
        path.skip(done)
        flow = Flow(c.seed, FlowParams(c.noise, c.arb_strength))
        flow.skip(done)
        return Weather(w3, info, path, self.artefacts, flow)

    def price(self) -> float:
        assert self.weather is not None, "arena is not up"
        return pool_price(*self.weather.reserves())

    def fund(self, address: str, native_wei: int, stable: int, risk: int) -> None:
        """Fund `address` from the faucet, and save the world that holds its money."""
        assert self.w3 is not None and self.info is not None, "arena is not up"
        fund(
            self.w3,
            self.info,
            self.artefacts,
            address,
            native_wei=native_wei,
            stable=stable,
            risk=risk,
        )
        log.info("arena_funded", address=address, native_wei=native_wei, stable=stable, risk=risk)
        self.save()

    def start_weather(self) -> None:
        if self.weather is not None and self.config.weather_interval_s > 0:
            self.weather.start(self.config.weather_interval_s)

    def save(self) -> bool:
        """Write the world to the state dir now; False without one or when nothing changed."""
        state_dir = self.config.state_dir
        if state_dir is None or self.info is None or self.weather is None:
            return False
        with self._save_lock:
            started = time.monotonic()
            with self.weather.between_steps() as step:
                block, head = self.anvil.head()
                if (head, step) == self._saved:
                    return False
                chain = self.anvil.dump_state()
            size = snapshot.write(state_dir, Snapshot(chain, step, self.info, block))
            self._saved = (head, step)
        duration = round(time.monotonic() - started, 3)
        log.debug("arena_saved", block=block, weather_step=step, bytes=size, duration_s=duration)
        return True

    def _start_saving(self) -> None:
        if self.config.state_dir is None or self.config.save_interval_s <= 0:
            return
        self._stop_saving.clear()
        self._saver = threading.Thread(target=self._save_often, name="arena-saver", daemon=True)
        self._saver.start()

    def _save_often(self) -> None:
        interval = wait = self.config.save_interval_s
        while not self._stop_saving.wait(wait):
            started = time.monotonic()
            try:
                self.save()
            except ArenaError as exc:  # the next save tries again; `down` saves once more
                log.warning("arena_save_failed", error=str(exc))
            wait = max(interval, 10 * (time.monotonic() - started))

    def down(self) -> None:
        """Stop the weather and the saver, save the world (with a state dir), stop the chain."""
        if self.weather is not None:
            self.weather.stop()
        self._stop_saving.set()
        if self._saver is not None:
            self._saver.join(timeout=60)
            self._saver = None
        try:
            self.save()
        finally:
            self.anvil.stop()


def price_path(config: ArenaConfig) -> PricePath | ReplayPath:
    """The fair value's path: a replayed series when one is named, else the seeded walk."""
    c = config
    if c.replay_csv is not None:
        return ReplayPath.from_csv(c.replay_csv)
    weather = WeatherParams(
        c.seed, c.drift, c.volatility, c.regime_switch, c.storm_factor, c.shock_prob, c.shock_size
    )
    return PricePath(c.start_price, weather)
