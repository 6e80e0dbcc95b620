"""Market weather: a seeded price path, really traded onto the pool."""

from __future__ import annotations

from decimal import Decimal

import pytest

from arena.local import LocalArena
from arena.weather import PricePath, WeatherParams, pool_price, trade_to_target


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
