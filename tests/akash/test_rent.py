"""Rent from the real price: the arithmetic against hand computations."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest

from agent.cli.main import main
from akash.rent import rent_from_price
from tests.akash.console_mock import ConsoleMock


def test_rent_at_the_default_cap_matches_a_hand_computation():
    """1 000 uact/block, 10 ticks of 5 s, 20% margin, 18 decimals: 0.01 stable a period."""
    # By hand: 50 s = 50/6 blocks; 1 000 * 50/6 = 25 000/3 uact = 1/120 USD; * 1.2 = 0.01 USD.
    rent = rent_from_price(1_000, period_ticks=10, interval_s=5.0, decimals=18, margin=0.2)
    assert rent.period_s == 50
    assert rent.blocks_per_period == Fraction(25, 3)
    assert rent.lease_per_period == Fraction(25_000, 3)
    assert rent.usd_per_period == Fraction(1, 120)
    assert rent.amount_base == 10**16
    assert rent.amount == Decimal("0.01")


def test_rent_rounds_up_and_shows_the_margin_earned_over_the_bid():
    """900.5 uact/block over 60 s at 25% is 11 256.25 base units: asked as 11 257."""
    rent = rent_from_price(
        Decimal("900.5"), period_ticks=12, interval_s=5, decimals=6, margin=Decimal("0.25")
    )
    # By hand: 10 blocks * 900.5 = 9 005 uact = 0.009005 USD = 9 005 base units; * 1.25.
    assert rent.cost_base == 9_005
    assert rent.amount_base == 11_257
    # A bid of 800 uact/block costs 8 000 base units a period: 11 257 / 8 000 - 1.
    assert rent.earned_margin(800) == Fraction(3_257, 8_000)
    assert any("11257 base units" in line for line in rent.lines())


def test_rent_in_uakt_uses_the_akt_price_and_the_stable_rate():
    """100 uakt/block, 60 s, AKT at 2.5 USD, 2 stable per USD, 6 decimals: 5 000 base units."""
    rent = rent_from_price(
        100,
        period_ticks=1,
        interval_s=60,
        decimals=6,
        denom="uakt",
        usd_per_token=Decimal("2.5"),
        stable_per_usd=2,
    )
    # By hand: 10 blocks * 100 = 1 000 uakt = 0.001 AKT = 0.0025 USD = 0.005 stable.
    assert rent.usd_per_period == Fraction(1, 400)
    assert rent.amount_base == 5_000


@pytest.mark.parametrize(
    ("field", "value"), [("denom", "uatom"), ("period_ticks", 0), ("interval_s", 0)]
)
def test_rent_refuses_bad_inputs_by_name(field: str, value: object):
    """A wrong denom, period or interval is refused with a message naming it."""
    args: dict[str, object] = {"period_ticks": 10, "interval_s": 5, "decimals": 6}
    args[field] = value
    with pytest.raises(ValueError, match=field.split("_", maxsplit=1)[0]):
        rent_from_price(1_000, **args)  # type: ignore[arg-type]


RENT_ENV = {
    "FORAGER_INTERVAL_S": "5",
    "FORAGER_RENT__PERIOD_TICKS": "10",
    "FORAGER_LANDLORD__MARGIN": "0.2",
}


def test_sdl_rent_from_price_renders_the_rent_and_prints_the_arithmetic(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """`akash sdl --price 1000 --rent-from-price`: the agent's rent is 0.01 stable a period."""
    for name, value in RENT_ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["akash", "sdl", "--price", "1000", "--rent-from-price"]) == 0
    out, err = capsys.readouterr()
    (amount,) = re.findall(r"FORAGER_RENT__AMOUNT=([0-9.]+)", out)
    assert Decimal(amount) == Decimal("0.01")
    assert "10000 base units" in err  # 6 decimals


def test_status_shows_the_rent_at_the_accepted_bid(
    console: ConsoleMock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """`akash status`: the escrow, and the rent arithmetic at the lease's bid price."""
    for name, value in {
        **RENT_ENV,
        "FORAGER_AKASH__API_KEY": "test-key",
        "FORAGER_AKASH__CONSOLE_URL": console.url,
    }.items():
        monkeypatch.setenv(name, value)
    dseq = console.lease(price="1000")
    assert main(["akash", "status", dseq]) == 0
    out = capsys.readouterr().out
    assert "escrow: 5000000 uact (open)" in out
    assert "rent at this bid (1000 uact/block)" in out
    assert "= 10000 base units" in out
