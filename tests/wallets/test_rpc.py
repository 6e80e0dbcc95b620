"""RPC failover, chain-id checks and retries, through a loopback fault proxy to a real anvil."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from agent.core.records import RentStatus
from agent.runtime.senses import Sensor
from arena.anvil import free_port
from arena.local import LocalArena
from tests.conftest import cast
from tests.fault_proxy import FaultProxy
from wallets.chain import Call, Chain
from wallets.dex import ROUTER_ABI, UniswapV2
from wallets.errors import ChainError, ChainUnavailable, TxReverted, WrongChain
from wallets.journal import Journal
from wallets.tokens import Erc20
from wallets.transactions import TxSender


@pytest.fixture
def proxies(arena: LocalArena) -> Iterator[list[FaultProxy]]:
    made = [FaultProxy(arena.anvil.url), FaultProxy(arena.anvil.url)]
    yield made
    for proxy in made:
        proxy.close()


def test_dead_endpoint_fails_over_to_the_next(proxies: list[FaultProxy]):
    """With the first endpoint answering 502, reads go to the second."""
    bad, good = proxies
    bad.mode = "502"
    chain = Chain([bad.url, good.url], chain_id=31337)
    assert chain.head().number > 0
    assert chain.rpc_url == good.url
    assert "eth_getBlockByNumber" in good.methods


def test_wrong_chain_endpoint_is_excluded_and_never_signed_for(
    arena: LocalArena, proxies: list[FaultProxy], tmp_path: Path
):
    """An endpoint claiming another chain id is excluded; transactions go only to the other."""
    liar, honest = proxies
    liar.mode = "chain:999"
    info = arena.info
    assert info is not None
    account = Account.create()
    arena.fund(account.address, native_wei=10**18, stable=10**6, risk=0)
    chain = Chain([liar.url, honest.url])
    chain.check_chain_id(31337)
    sender = TxSender(chain, account, Journal(tmp_path / "j.sqlite"), 31337)
    token = Erc20(chain, info.stable_token)
    assert sender.send(token.address, token.transfer_data(info.landlord, 5), "rent").status == 1
    assert set(liar.methods) == {"eth_chainId"}
    assert "eth_sendRawTransaction" in honest.methods
    assert liar.url in chain.provider.excluded


def test_all_endpoints_on_the_wrong_chain_is_a_wrong_chain_error(proxies: list[FaultProxy]):
    """If every endpoint serves another chain, start-up fails with WrongChain."""
    for proxy in proxies:
        proxy.mode = "chain:5"
    with pytest.raises(WrongChain):
        Chain([p.url for p in proxies]).check_chain_id(31337)


@pytest.mark.parametrize("mode", ["429", "rpc_limit", "drop"])
def test_transient_errors_are_retried_with_backoff(proxies: list[FaultProxy], mode: str):
    """Rate limits (HTTP 429 or inside a 200 body) and dropped connections are retried."""
    proxy = proxies[0]
    proxy.mode, proxy.faults_left = mode, 2
    chain = Chain([proxy.url], chain_id=31337)
    assert chain.head().number > 0
    assert len(proxy.methods) >= 3  # two faults, then the answer


def test_unreachable_chain_is_chain_unavailable_in_bounded_time(proxies: list[FaultProxy]):
    """When every endpoint keeps failing, the caller gets ChainUnavailable, not a hang."""
    for proxy in proxies:
        proxy.mode = "drop"
    chain = Chain([p.url for p in proxies])
    started = time.monotonic()
    with pytest.raises(ChainUnavailable, match="every RPC endpoint failed"):
        chain.head()
    assert time.monotonic() - started < 30


def test_api_key_in_an_rpc_url_never_reaches_an_error():
    """A key carried in the URL path is masked in exceptions (and so in logs)."""
    keyed = f"http://127.0.0.1:{free_port()}/v3/sk-live-abcdef0123456789"  # nothing listens
    with pytest.raises(ChainUnavailable) as info:
        Chain([keyed]).head()
    assert "sk-live-abcdef0123456789" not in str(info.value)


def test_sensing_is_one_round_trip(arena: LocalArena, proxies: list[FaultProxy]):
    """A tick's observation (block, gas, balances, reserves) costs one HTTP request."""
    info = arena.info
    assert info is not None
    proxy = proxies[0]
    chain = Chain([proxy.url])
    stable, risk = Erc20(chain, info.stable_token), Erc20(chain, info.risk_token)
    sensor = Sensor(chain, UniswapV2(chain, info.router, info.pool), stable, risk, info.faucet)
    sensor.sense(0, RentStatus(1, 10, 0, 0), ())  # warms caches (the pair's token0)
    before = proxy.posts
    obs = sensor.sense(1, RentStatus(1, 10, 1, 0), ())
    assert proxy.posts - before == 1
    assert obs.balances.stable == stable.balance_of(info.faucet)
    assert obs.reserve_stable > 0 and obs.price == pytest.approx(2.0, rel=1e-6)


def test_reading_after_a_tick_is_one_round_trip_and_calls_ask_no_chain_id(
    arena: LocalArena, proxies: list[FaultProxy]
):
    """The record stage's balances, reserves and share supply are one request; a contract
    call is one request too (web3's chain-id question is answered from the verified id)."""
    info = arena.info
    assert info is not None
    proxy = proxies[0]
    chain = Chain([proxy.url], chain_id=info.chain_id)
    stable, risk = Erc20(chain, info.stable_token), Erc20(chain, info.risk_token)
    sensor = Sensor(chain, UniswapV2(chain, info.router, info.pool), stable, risk, info.faucet)
    sensor.snapshot()  # warms caches (the pair's token0) and verifies the endpoint
    before = proxy.posts
    balances, reserve_stable, _, supply = sensor.snapshot()
    assert proxy.posts - before == 1
    assert balances.lp == UniswapV2(chain, info.router, info.pool).shares.balance_of(info.faucet)
    assert reserve_stable > 0 and supply > 0
    before = proxy.posts
    assert stable.balance_of(info.faucet) == balances.stable
    assert proxy.posts - before == 1


def test_encoded_reads_agree_with_cast_and_name_what_failed(arena: LocalArena):
    """The tick's reads go out as raw JSON-RPC and are decoded here: they agree with an
    independent client, and a call that reverts or returns nothing names itself."""
    info = arena.info
    assert info is not None
    chain = Chain([arena.anvil.url], chain_id=info.chain_id)
    stable, risk = Erc20(chain, info.stable_token), Erc20(chain, info.risk_token)
    dex = UniswapV2(chain, info.router, info.pool)
    owner = Account.create().address
    arena.fund(owner, native_wei=3 * 10**18, stable=7 * 10**9, risk=5 * 10**18)
    head, gas_price, native, results = chain.read_state(
        owner, [stable.balance_call(owner), dex.reserves_call()]
    )
    (balance,), (reserve0, reserve1, _) = results
    url = ["--rpc-url", arena.anvil.url]
    said = cast("call", info.stable_token, "balanceOf(address)(uint256)", owner, *url)
    assert balance == int(said.split()[0]) == 7 * 10**9
    assert native == int(cast("balance", owner, *url).split()[0]) == 3 * 10**18
    assert head.number == int(cast("block-number", *url).split()[0])
    assert gas_price == int(cast("gas-price", *url).split()[0])
    lines = cast("call", info.pool, "getReserves()(uint112,uint112,uint32)", *url).split("\n")
    assert [reserve0, reserve1] == [int(line.split()[0]) for line in lines[:2]]

    router = chain.contract(info.router, ROUTER_ABI)
    doomed = Call.of(router, "getAmountsOut", 0, [stable.address, risk.address])
    with pytest.raises(TxReverted, match=r"getAmountsOut on 0x\w+: reverted: .*INPUT_AMOUNT"):
        chain.read_state(owner, [stable.balance_call(owner), doomed])
    nothing_there = Erc20(chain, owner)  # an account, not a contract: no bytes back
    with pytest.raises(ChainError, match=r"balanceOf on 0x\w+: returned '0x', not \(uint256\)"):
        nothing_there.balance_of(owner)


def test_signatures_use_libsecp256k1():
    """eth-keys signs with coincurve when it is installed, and pure Python (about 100 times
    slower, measured by `bench.tick`) when it is not: the dependency must be there."""
    from eth_keys.backends import get_backend_class

    assert get_backend_class().__name__ == "CoinCurveECCBackend"
    signed = Account.from_key(b"\x01" * 32).sign_transaction(
        {"to": "0x" + "22" * 20, "value": 1, "gas": 21000, "gasPrice": 1, "nonce": 0, "chainId": 1}
    )
    sender = Account.recover_transaction(signed.raw_transaction)
    assert sender == Account.from_key(b"\x01" * 32).address
