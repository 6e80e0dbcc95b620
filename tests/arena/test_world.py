"""The arena's contracts: an ERC-20 pair in a 0.3 % constant-product pool behind a V2 router."""

from __future__ import annotations

from web3 import Web3

from arena.local import LocalArena
from arena.world import STABLE_DECIMALS
from tests.conftest import cast, cast_balance
from wallets.chain import Chain
from wallets.dex import UniswapV2, amount_out
from wallets.tokens import Erc20


def test_tokens_have_the_promised_decimals(arena: LocalArena):
    """The stable token has 6 decimals and the risk token 18 (read with cast)."""
    info = arena.info
    assert info is not None
    assert cast("call", info.stable_token, "decimals()(uint8)", "--rpc-url", info.rpc_url) == "6"
    assert cast("call", info.risk_token, "decimals()(uint8)", "--rpc-url", info.rpc_url) == "18"


def test_router_quote_matches_the_independent_formula(arena: LocalArena):
    """getAmountsOut equals the locally computed constant-product output with a 0.3 % fee."""
    info = arena.info
    assert info is not None
    chain = Chain(info.rpc_url)
    dex = UniswapV2(chain, info.router, info.pool)
    reserves = dex.reserves(info.stable_token, info.risk_token)
    amount = 123 * 10**STABLE_DECIMALS
    local = amount_out(amount, reserves.of(info.stable_token), reserves.of(info.risk_token))
    assert dex.quote(amount, info.stable_token, info.risk_token) == local > 0


def test_funding_gives_gas_and_tokens(arena: LocalArena):
    """The faucet funds a new wallet with ETH and tokens."""
    info = arena.info
    assert info is not None
    who = Web3.to_checksum_address("0x" + "ab" * 20)
    arena.fund(who, native_wei=10**18, stable=7 * 10**6, risk=3)
    assert cast_balance(info.rpc_url, info.stable_token, who) == 7 * 10**6
    assert Erc20(Chain(info.rpc_url), info.risk_token).balance_of(who) == 3
    assert Chain(info.rpc_url).native_balance(who) == 10**18
