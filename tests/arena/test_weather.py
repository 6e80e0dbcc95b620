"""Market weather: a seeded price path, really traded onto the pool."""

from __future__ import annotations

import itertools
import math
import statistics
from decimal import Decimal
from pathlib import Path

import pytest

from agent.config import default_cache_dir
from arena.errors import PriceSeriesError
from arena.local import ArenaConfig, LocalArena
from arena.weather import (
    FlowParams,
    PricePath,
    ReplayPath,
    WeatherParams,
    pool_price,
    simulate,
    trade_to_target,
)


def test_same_seed_same_path_and_other_seed_differs():
    """The target path is a pure function of the seed."""
    params = WeatherParams(seed=7, volatility=0.02)
    a = PricePath(Decimal(2), params)
    b = PricePath(Decimal(2), params)
    c = PricePath(Decimal(2), WeatherParams(seed=8, volatility=0.02))
    path_a = [a.next() for _ in range(20)]
    assert path_a == [b.next() for _ in range(20)]
    assert path_a != [c.next() for _ in range(20)]


def test_skip_continues_the_same_path():
    """A restarted arena that skips N steps continues where it left off."""
    params = WeatherParams(seed=3)
    whole = PricePath(Decimal(2), params)
    expected = [whole.next() for _ in range(8)][5:]
    resumed = PricePath(Decimal(2), params)
    resumed.skip(5)
    assert [resumed.next() for _ in range(3)] == expected


def test_trade_to_target_direction():
    """To raise the price sell stable; to lower it sell risk."""
    reserves = (100_000 * 10**6, 50_000 * 10**18)  # price 2.0
    assert trade_to_target(*reserves, 2.2)[0] == "stable"
    assert trade_to_target(*reserves, 1.8)[0] == "risk"
    assert pool_price(*reserves) == pytest.approx(2.0)


def test_weather_moves_the_pool_onto_the_seeded_path(arena: LocalArena):
    """On a real chain each step lands the pool price on the path's next target."""
    assert arena.weather is not None
    targets = PricePath(arena.config.start_price, WeatherParams(seed=arena.config.seed))
    for _ in range(5):
        price = arena.weather.step()
        assert price == pytest.approx(targets.next(), rel=1e-3)


def test_regimes_and_shocks_are_seeded_and_change_the_weather():
    """Storms raise the volatility, shocks jump; the same seed gives the same stormy path."""
    params = WeatherParams(seed=4, volatility=0.01, regime_switch=0.05, storm_factor=5.0)
    a, b = PricePath(Decimal(2), params), PricePath(Decimal(2), params)
    moves: dict[bool, list[float]] = {False: [], True: []}
    last = 2.0
    for _ in range(4000):
        price = a.next()
        moves[a.storm].append(abs(math.log(price / last)))
        last = price
        assert b.next() == price
    assert moves[True] and moves[False]  # both regimes happened
    assert statistics.mean(moves[True]) > 3 * statistics.mean(moves[False])

    calm = PricePath(Decimal(2), WeatherParams(seed=9, volatility=0.001))
    shocked = PricePath(Decimal(2), WeatherParams(seed=9, volatility=0.001, shock_prob=0.1))
    jumps = [abs(math.log(y / x)) for x, y in itertools.pairwise(
        [2.0, *[shocked.next() for _ in range(500)]])]  # fmt: skip
    assert shocked.shocks > 20 and sum(j > 0.05 for j in jumps) == shocked.shocks
    assert max(abs(math.log(calm.next() / 2.0)) for _ in range(50)) < 0.05


def test_a_csv_price_series_is_replayed_and_bad_rows_are_named(tmp_path: Path):
    """A CSV series is replayed price by price and then holds its last; a bad row or a
    missing file is named in an arena error."""
    series = tmp_path / "prices.csv"
    series.write_text("time,price\n1,2.0\n2,2.5\n3,1.75\n")
    path = ReplayPath.from_csv(series)
    assert [path.next() for _ in range(5)] == [2.0, 2.5, 1.75, 1.75, 1.75]
    bare = tmp_path / "bare.csv"
    bare.write_text("3.0\n3.5\n")
    resumed = ReplayPath.from_csv(bare)
    resumed.skip(1)
    assert resumed.next() == 3.5
    broken = tmp_path / "broken.csv"
    broken.write_text("price\n2.0\nabc\n")
    with pytest.raises(PriceSeriesError, match=r"broken.csv, row 3: 'abc' is not a price > 0"):
        ReplayPath.from_csv(broken)
    with pytest.raises(PriceSeriesError, match="cannot be read"):
        ReplayPath.from_csv(tmp_path / "missing.csv")


def test_the_arena_replays_a_csv_onto_the_pool(tmp_path: Path):
    """With a replayed series the weather trades the on-chain pool to each recorded price."""
    series = tmp_path / "prices.csv"
    series.write_text("price\n2.2\n1.9\n2.05\n")
    arena = LocalArena(
        ArenaConfig(
            weather_interval_s=0,
            replay_csv=series,
            cache_dir=default_cache_dir() / "contracts",
        )
    )
    arena.up()
    try:
        assert arena.weather is not None
        prices = [arena.weather.step() for _ in range(3)]
        assert prices == pytest.approx([2.2, 1.9, 2.05], rel=1e-3)
    finally:
        arena.down()


def test_a_lagging_arbitrageur_and_noise_make_deviations_revert():
    """With arb_strength k and noise, the pool's log deviation from fair value is an AR(1)
    with coefficient 1 - k: it reverts (mean reversion has an edge); k = 1 and no noise is the
    pure walk; the fair path does not depend on the flow's settings."""
    weather = WeatherParams(seed=12, volatility=0.01)
    pure = simulate(Decimal(2), weather, FlowParams(), 300)
    assert all(pool == pytest.approx(fair) for fair, pool in pure)
    k = 0.3
    lagged = simulate(Decimal(2), weather, FlowParams(noise=0.02, arb_strength=k), 3000)
    assert [f for f, _ in lagged[:300]] == [f for f, _ in pure]  # same plan, whatever the flow
    dev = [math.log(pool / fair) for fair, pool in lagged]
    mean = statistics.mean(dev)
    lag1 = sum((a - mean) * (b - mean) for a, b in itertools.pairwise(dev)) / sum(
        (d - mean) ** 2 for d in dev
    )
    # d' = (1-k)(d + fair step) + noise: the fair step adds (1-k)·vol, slightly raising it
    assert lag1 == pytest.approx(1 - k, abs=0.08)
    assert max(abs(d) for d in dev) > 0.03 and abs(mean) < 0.01
    again = simulate(Decimal(2), weather, FlowParams(noise=0.02, arb_strength=k), 3000)
    assert again == lagged  # seeded


def test_on_chain_the_pool_follows_the_flow_not_the_fair_value(tmp_path: Path):
    """On the chain the pool follows the off-chain plan of the flow (lag and noise), step by
    step, while the fair value follows the seeded walk."""
    flow = FlowParams(noise=0.01, arb_strength=0.5)
    arena = LocalArena(
        ArenaConfig(
            seed=6,
            volatility=0.02,
            noise=flow.noise,
            arb_strength=flow.arb_strength,
            weather_interval_s=0,
            cache_dir=default_cache_dir() / "contracts",
        )
    )
    arena.up()
    try:
        assert arena.weather is not None
        plan = simulate(Decimal(2), WeatherParams(seed=6, volatility=0.02), flow, 6)
        for fair, pool in plan:
            assert arena.weather.step() == pytest.approx(pool, rel=2e-3)
            assert arena.weather.fair == pytest.approx(fair)
    finally:
        arena.down()
