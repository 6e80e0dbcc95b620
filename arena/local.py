"""The arena's lifecycle: start anvil, deploy or restore the world, run the weather, stop.

With a state directory the world persists: stopping saves the chain and the weather's step,
and the next start restores both, so an agent restarted on the same data dir finds its money.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import structlog
from web3 import Web3

from arena.anvil import Anvil
from arena.compiler import Artefact, compile_all
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
    state_dir: Path | None = None
    cache_dir: Path | None = None


class LocalArena:
    """A running local world."""

    def __init__(self, config: ArenaConfig) -> None:
        self.config = config
        state_file = config.state_dir / "anvil-state.hex" if config.state_dir else None
        self.anvil = Anvil(config.anvil, config.chain_id, config.port, state_file)
        self.artefacts: dict[str, Artefact] = {}
        self.info: ArenaInfo | None = None
        self.weather: Weather | None = None
        self.fresh = False
        self.w3: Web3 | None = None

    def up(self) -> ArenaInfo:
        """Start the chain and the world; `fresh` tells whether it was deployed anew."""
        self.artefacts = compile_all(self.config.cache_dir)
        self.anvil.start()
        self.w3 = Web3(Web3.HTTPProvider(self.anvil.url, request_kwargs={"timeout": 30}))
        self.info = self._restore_or_deploy(self.w3)
        self.weather = self._weather(self.w3, self.info)
        log.info(
            "arena_started",
            rpc_url=self.info.rpc_url,
            fresh=self.fresh,
            weather_step=self.weather.steps,
            price=round(self.price(), 6),
        )
        return self.info

    def _restore_or_deploy(self, w3: Web3) -> ArenaInfo:
        saved = self._saved_info()
        if saved is not None:
            return dataclasses.replace(saved, rpc_url=self.anvil.url)
        liquidity = Liquidity(self.config.liquidity_stable, self.config.start_price)
        info = deploy_world(w3, self.artefacts, liquidity, self.anvil.url)
        self.fresh = True
        return info

    def _weather(self, w3: Web3, info: ArenaInfo) -> Weather:
        """The weather, continued from the saved step when the world was restored."""
        c, done = self.config, self._saved_weather_step()
        path = price_path(c)
        path.skip(done)
        flow = Flow(c.seed, FlowParams(c.noise, c.arb_strength))
        flow.skip(done)
        return Weather(w3, info, path, self.artefacts, flow)

    def price(self) -> float:
        assert self.weather is not None, "arena is not up"
        return pool_price(*self.weather.reserves())

    def fund(self, address: str, native_wei: int, stable: int, risk: int) -> None:
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

    def start_weather(self) -> None:
        if self.weather is not None and self.config.weather_interval_s > 0:
            self.weather.start(self.config.weather_interval_s)

    def down(self) -> None:
        """Stop the weather, save the world (with a state dir), stop the chain."""
        if self.weather is not None:
            self.weather.stop()
        try:
            self._save()
        finally:
            self.anvil.stop()

    def _save(self) -> None:
        state_dir = self.config.state_dir
        if state_dir is None or self.info is None or self.weather is None:
            return
        self.anvil.save_state()
        self.info.dump(state_dir / "arena.json")
        (state_dir / "weather.json").write_text(json.dumps({"step": self.weather.steps}))

    def _saved_info(self) -> ArenaInfo | None:
        state_dir = self.config.state_dir
        if state_dir is None or not self.anvil.state_file or not self.anvil.state_file.exists():
            return None
        info_file = state_dir / "arena.json"
        return ArenaInfo.load(info_file) if info_file.exists() else None

    def _saved_weather_step(self) -> int:
        if self.config.state_dir is None or self.info is None or self.fresh:
            return 0
        weather_file = self.config.state_dir / "weather.json"
        if not weather_file.exists():
            return 0
        return int(json.loads(weather_file.read_text())["step"])


def price_path(config: ArenaConfig) -> PricePath | ReplayPath:
    """The fair value's path: a replayed series when one is named, else the seeded walk."""
    c = config
    if c.replay_csv is not None:
        return ReplayPath.from_csv(c.replay_csv)
    weather = WeatherParams(
        c.seed, c.drift, c.volatility, c.regime_switch, c.storm_factor, c.shock_prob, c.shock_size
    )
    return PricePath(c.start_price, weather)
