"""Sense: read the chain into an Observation."""

from __future__ import annotations

from agent.core.records import Balances, Observation, RentStatus
from wallets.chain import Chain, Head
from wallets.dex import UniswapV2
from wallets.tokens import Erc20


class Sensor:
    """Reads the agent's wallet and market into numbers."""

    def __init__(
        self, chain: Chain, dex: UniswapV2, stable: Erc20, risk: Erc20, owner: str
    ) -> None:
        self._chain = chain
        self._dex = dex
        self._stable = stable
        self._risk = risk
        self._owner = owner
        self.stable_decimals = stable.decimals()
        self.risk_decimals = risk.decimals()
        # the same five reads every tick, encoded once
        self._calls = [
            stable.balance_call(owner),
            risk.balance_call(owner),
            dex.reserves_call(),
            dex.shares.balance_call(owner),
            dex.shares.supply_call(),
        ]

    def balances(self) -> Balances:
        return Balances(
            native=self._chain.native_balance(self._owner),
            stable=self._stable.balance_of(self._owner),
            risk=self._risk.balance_of(self._owner),
            lp=self._dex.shares.balance_of(self._owner),
        )

    def reserves(self) -> tuple[int, int]:
        """(stable, risk) reserves of the pool."""
        r = self._dex.reserves(self._stable.address, self._risk.address)
        return r.of(self._stable.address), r.of(self._risk.address)

    def snapshot(self) -> tuple[Balances, int, int, int]:
        """Balances, (stable, risk) reserves and the pool's share supply: one round trip."""
        _, _, balances, reserve_stable, reserve_risk, supply = self._read()
        return balances, reserve_stable, reserve_risk, supply

    def thought_for(self, seconds: float) -> None:
        """Nothing to do: the chain moved by itself while the agent was deciding."""

    def price(self, reserve_stable: int, reserve_risk: int) -> float:
        if reserve_risk == 0:
            return 0.0
        scale = 10 ** (self.risk_decimals - self.stable_decimals)
        return float(reserve_stable * scale / reserve_risk)

    def sense(self, tick: int, rent: RentStatus, recent: tuple[str, ...]) -> Observation:
        """Everything in one JSON-RPC batch: one round trip per tick."""
        head, gas_price, balances, reserve_stable, reserve_risk, supply = self._read()
        return Observation(
            tick=tick,
            block=head.number,
            timestamp=head.timestamp,
            balances=balances,
            reserve_stable=reserve_stable,
            reserve_risk=reserve_risk,
            price=self.price(reserve_stable, reserve_risk),
            gas_price=gas_price,
            rent=rent,
            stable_decimals=self.stable_decimals,
            risk_decimals=self.risk_decimals,
            recent=recent,
            lp_supply=supply,
        )

    def _read(self) -> tuple[Head, int, Balances, int, int, int]:
        head, gas_price, native, results = self._chain.read_state(self._owner, self._calls)
        (stable,), (risk,), raw_reserves, (lp,), (supply,) = results
        reserves = self._dex.decode_reserves(raw_reserves, self._stable.address, self._risk.address)
        balances = Balances(native=native, stable=int(stable), risk=int(risk), lp=int(lp))
        return (
            head,
            gas_price,
            balances,
            reserves.of(self._stable.address),
            reserves.of(self._risk.address),
            int(supply),
        )
