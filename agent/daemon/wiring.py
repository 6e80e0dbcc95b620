"""The composition root: build every concrete part of an agent from settings, in one place."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3Exception

from agent.config import ModelSettings, Settings
from agent.core.decider import Decider
from agent.core.policy import Limits, ReplicationLimits
from agent.core.prompt import answer_schema, system_prompt
from agent.core.strategies import RuleDecider
from agent.errors import ConfigError
from agent.model.adapter import adapter_prompt
from agent.model.cache import DEFAULT_MODEL, locate_default
from agent.model.deciders import LlamaDecider, ServedDecider
from agent.runtime.executor import Executor
from agent.runtime.lineage import Nursery
from agent.runtime.loop import Acts, Agent, RentTerms, Replication, Senses
from agent.runtime.senses import Sensor
from agent.runtime.store import Store
from agent.runtime.wallet_env import KEYSTORE_JSON_VAR
from arena.compiler import compile_all
from arena.local import ArenaConfig, LocalArena
from arena.weather import ReplayPath
from arena.world import RISK_DECIMALS, STABLE_DECIMALS, ArenaInfo, fund
from telemetry.redaction import redact_url, redact_urls, secrets
from wallets.chain import Chain, checksum
from wallets.dex import UniswapV2
from wallets.errors import ChainError, KeystoreError
from wallets.history import swaps_since
from wallets.journal import Journal
from wallets.keystore import (
    create_keystore,
    decrypt_keystore,
    load_keystore,
    make_wallet,
    read_password,
)
from wallets.tokens import Erc20, to_base
from wallets.transactions import TxSender

log = structlog.get_logger()

if TYPE_CHECKING:
    from agent.model.engine import BatchEngine

_MAX_DEFAULT_THREADS = 8
_DAY_S = 86_400


@dataclass(frozen=True)
class Market:
    """Addresses of the world the agent lives in. Its RPC URLs may hold an API key: they are
    left out of its repr, and shown only through `redact_url`."""

    rpc_url: str = field(repr=False)
    chain_id: int
    stable_token: str
    risk_token: str
    pool: str
    router: str
    landlord: str
    fallback_urls: tuple[str, ...] = field(default=(), repr=False)


def market_from_settings(settings: Settings) -> Market:
    """The live market; its RPC URLs are registered as secrets before anything uses them."""
    c = settings.chain
    assert c.rpc_url is not None and c.chain_id is not None, "load_settings checks it is complete"
    url, *fallbacks = c.urls()
    for each in (url, *fallbacks):
        secrets.register_url(each)
    fields = {"stable_token": c.stable_token, "risk_token": c.risk_token, "pool": c.pool}
    fields |= {"router": c.router, "landlord": c.landlord}
    checked = {}
    for name, value in fields.items():
        try:
            checked[name] = checksum(value or "")
        except ValueError as exc:
            raise ConfigError(f"FORAGER_CHAIN__{name.upper()}: {exc}") from exc
    return Market(rpc_url=url, chain_id=c.chain_id, fallback_urls=tuple(fallbacks), **checked)


def market_from_arena(info: ArenaInfo) -> Market:
    return Market(
        rpc_url=info.rpc_url,
        chain_id=info.chain_id,
        stable_token=info.stable_token,
        risk_token=info.risk_token,
        pool=info.pool,
        router=info.router,
        landlord=info.landlord,
    )


def load_arena_file(path: Path) -> ArenaInfo:
    """A shared arena's connection file (`forager arena up --out FILE`), checked."""
    try:
        return ArenaInfo.load(path)
    except FileNotFoundError as exc:
        message = f"arena file {path} does not exist (forager arena up --out writes it)"
        raise ConfigError(message) from exc
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"arena file {path} is not an arena connection file: {exc}") from exc


def fund_from_faucet(settings: Settings, info: ArenaInfo, address: str) -> bool:
    """Give a new wallet its starting money from the arena's faucet; False if it had some."""
    w3 = Web3(Web3.HTTPProvider(info.rpc_url, request_kwargs={"timeout": 30}))
    try:
        if w3.eth.get_balance(checksum(address)) > 0:
            return False
        a = settings.arena
        fund(
            w3,
            info,
            compile_all(settings.cache_dir / "contracts"),
            address,
            native_wei=to_base(a.agent_native, 18),
            stable=to_base(a.agent_stable, STABLE_DECIMALS),
            risk=to_base(a.agent_risk, RISK_DECIMALS),
        )
    except (OSError, Web3Exception, TimeoutError) as exc:
        where, why = redact_url(info.rpc_url), secrets.scrub(redact_urls(str(exc)))
        raise ChainError(f"arena at {where} could not fund {address}: {why}") from exc
    log.info("arena_funded", address=address, rpc_url=redact_url(info.rpc_url))
    return True


def check_replay(path: Path | None) -> None:
    """A replayed price series is read once at start: a bad file stops start-up, named."""
    if path is not None:
        try:
            ReplayPath.from_csv(path)
        except ValueError as exc:
            raise ConfigError(f"FORAGER_ARENA__REPLAY_CSV: {exc}") from exc


def arena_config(settings: Settings, **changes: Any) -> ArenaConfig:
    """The arena's shape from the settings; `changes` that are not None override them."""
    a = settings.arena
    check_replay(changes.get("replay_csv") or a.replay_csv)
    config = ArenaConfig(
        anvil=a.anvil,
        seed=a.seed,
        liquidity_stable=a.liquidity_stable,
        start_price=a.start_price,
        drift=a.drift,
        volatility=a.volatility,
        regime_switch=a.regime_switch,
        storm_factor=a.storm_factor,
        shock_prob=a.shock_prob,
        shock_size=a.shock_size,
        replay_csv=a.replay_csv,
        noise=a.noise,
        arb_strength=a.arb_strength,
        weather_interval_s=a.weather_interval_s,
        save_interval_s=a.save_interval_s,
        new_world=a.new_world,
        cache_dir=settings.cache_dir / "contracts",
    )
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


def build_arena(settings: Settings) -> LocalArena:
    return LocalArena(arena_config(settings, state_dir=settings.data_dir / "arena"))


def open_wallet(settings: Settings, create_if_missing: bool) -> LocalAccount:
    """Load the agent's key; on the arena, create a keystore and password file on first run."""
    if settings.wallet.keystore_json is not None:  # shipped as settings (`wallet_env`)
        document = settings.wallet.keystore_json.get_secret_value()
        secrets.register(document)
        password = _password(settings, settings.wallet.password_file)
        return decrypt_keystore(document, password, KEYSTORE_JSON_VAR)
    keystore = settings.wallet.keystore or settings.data_dir / "keystore.json"
    password_file = settings.wallet.password_file
    if settings.wallet.password is None and password_file is None:
        password_file = settings.data_dir / "keystore.password"
    if keystore.exists() or not create_if_missing:
        return load_keystore(keystore, _password(settings, password_file))
    account = _new_wallet(settings, keystore, password_file)
    log.info("keystore_created", keystore=str(keystore), address=account.address)
    return account


def _new_wallet(settings: Settings, keystore: Path, password_file: Path | None) -> LocalAccount:
    """A first start: a fresh key, under a new random password unless one was given."""
    if settings.wallet.password is None and password_file and not password_file.exists():
        return make_wallet(keystore, password_file)
    return create_keystore(keystore, _password(settings, password_file))


def _password(settings: Settings, password_file: Path | None) -> str:
    if settings.wallet.password is not None:
        return settings.wallet.password.get_secret_value()
    if password_file is None:
        raise KeystoreError("no keystore password: set FORAGER_WALLET__PASSWORD_FILE")
    return read_password(password_file)


def model_name(settings: Settings) -> str:
    """The model's file name (or the rule's name), known before it is loaded."""
    if settings.strategy != "llm":
        return f"rule:{settings.strategy}"
    m = settings.model
    return m.path.name if m.path else DEFAULT_MODEL.filename_as(m.weights)


def model_file(settings: Settings) -> Path:
    """The model's GGUF file: the one set, else the bundled model in the settings' encoding."""
    m = settings.model
    return m.path or locate_default(settings.cache_dir, weights=m.weights)


def build_engine(settings: Settings, *, slots: int) -> BatchEngine:
    """The shared model of `forager model serve`, from the same settings an agent's would be."""
    from agent.model.engine import BatchEngine

    m = settings.model
    return BatchEngine(
        model_file(settings),
        slots=slots,
        slot_ctx=m.n_ctx,
        n_batch=m.n_batch,
        flash_attn=m.flash_attn,
        n_threads=m.n_threads or min(os.cpu_count() or 1, _MAX_DEFAULT_THREADS),
        n_gpu_layers=m.n_gpu_layers,
        lora_path=m.lora,
    )


def build_decider(settings: Settings) -> Decider:
    """The settings' decider: a rule, the shared model server, or the model in this process."""
    if settings.strategy != "llm":
        try:
            return RuleDecider(settings.strategy, seed=settings.model.seed)
        except ValueError as exc:
            raise ConfigError(f"FORAGER_STRATEGY: {exc}") from exc
    if settings.model.server_url:
        return _served_decider(settings, settings.model.server_url)
    return _llama_decider(settings)


def _served_decider(settings: Settings, server_url: str) -> ServedDecider:
    m = settings.model
    return ServedDecider(
        server_url,
        temperature=m.temperature,
        max_tokens=m.max_tokens,
        seed=m.seed,
        system_prompt=system_prompt(settings.persona, prompt_style(m)),
        schema=answer_schema(prompt_style(m)),
        capture_content=settings.telemetry.capture_content,
        adapter=m.lora,  # checked against the server's adapters
        style=prompt_style(m),
    )


def prompt_style(m: ModelSettings) -> str:
    """The system prompt: as set, else the one the adapter was trained with, else the default."""
    if "prompt" in m.model_fields_set:
        return m.prompt
    return adapter_prompt(m.lora) or m.prompt


def _llama_decider(settings: Settings) -> LlamaDecider:
    m = settings.model
    return LlamaDecider(
        model_file(settings),
        n_ctx=m.n_ctx,
        n_batch=m.n_batch,
        flash_attn=m.flash_attn,
        n_threads=m.n_threads or min(os.cpu_count() or 1, _MAX_DEFAULT_THREADS),
        n_gpu_layers=m.n_gpu_layers,
        temperature=m.temperature,
        max_tokens=m.max_tokens,
        seed=m.seed,
        system_prompt=system_prompt(settings.persona, prompt_style(m)),
        schema=answer_schema(prompt_style(m)),
        capture_content=settings.telemetry.capture_content,
        lora_path=m.lora,
        decode=m.decode,
        style=prompt_style(m),
    )


def rebuild_spend(store: Store, chain: Chain, market: Market, owner: str) -> None:
    """Count every swap of the last day that the chain has and the store does not.

    That covers a lost data dir (an Akash lease can lose its volume) and a crash between a
    swap and its tick record: the rolling caps count each swap once, whatever happened.
    """
    if chain.nonce(owner, "latest") == 0:
        return
    since = chain.head().timestamp - _DAY_S
    found = swaps_since(chain, owner, market.pool, market.stable_token, market.risk_token, since)
    known = store.known_tx_hashes()
    missing = [s for s in found if s.tx_hash not in known]
    if missing:
        store.add_rebuilt_swaps([(s.tx_hash, float(s.timestamp), s.value_stable) for s in missing])
        value = sum(s.value_stable for s in missing)
        log.info("spend_rebuilt", swaps=len(missing), value_stable=value)


def limits_from(settings: Settings, stable_decimals: int) -> Limits:
    """The guard's bounds in base units, from the policy settings."""
    p, sd = settings.policy, stable_decimals
    return Limits(
        max_swap_pct=p.max_swap_pct,
        max_swap_stable=to_base(p.max_swap_stable, sd),
        reserve_stable=to_base(settings.rent.amount, sd) * p.reserve_periods,
        max_slippage_bps=p.max_slippage_bps,
        window_hour_stable=to_base(p.window_hour_stable, sd),
        window_day_stable=to_base(p.window_day_stable, sd),
        max_deviation_bps=p.max_deviation_bps,
        deadline_s=p.deadline_s,
    )


@dataclass(frozen=True)
class Ports:
    """What an agent is wired to: where it senses and acts, who decides, where it remembers."""

    sensor: Senses
    executor: Acts
    decider: Decider
    store: Store
    stable_decimals: int
    clock: Callable[[], float] = time.time


def rent_terms(settings: Settings, stable_decimals: int) -> RentTerms:
    """The landlord's terms in base units, from the rent settings."""
    r = settings.rent
    return RentTerms(
        to_base(r.amount, stable_decimals), r.period_ticks, r.grace_ticks, r.sell_for_rent
    )


def assemble_agent(
    settings: Settings,
    ports: Ports,
    *,
    agent_id: str,
    generation: int,
    replication: Replication | None = None,
) -> Agent:
    """The one way an `Agent` is made: ports (the chain's, or the lab's paper) plus settings."""
    llm = settings.strategy == "llm"
    return Agent(
        agent_id=agent_id,
        generation=generation,
        sensor=ports.sensor,
        decider=ports.decider,
        limits=limits_from(settings, ports.stable_decimals),
        executor=ports.executor,
        rent=rent_terms(settings, ports.stable_decimals),
        store=ports.store,
        strategy=settings.strategy,
        persona=settings.persona if llm else None,
        adapter=getattr(ports.decider, "adapter", None) if llm else None,
        replication=replication,
        clock=ports.clock,
    )


def build_agent(
    settings: Settings,
    market: Market,
    account: LocalAccount,
    decider: Decider,
    store: Store,
) -> tuple[Agent, Chain, TxSender]:
    """Connect to the market and assemble the loop's stages."""
    chain = connect(market)
    sender = tx_sender(settings, chain, market, account)
    sender.reconcile()
    rebuild_spend(store, chain, market, account.address)
    sensor, executor = chain_ports(chain, market, sender, account.address)
    ports = Ports(sensor, executor, decider, store, sensor.stable_decimals)
    agent = assemble_agent(
        settings,
        ports,
        agent_id=store.agent_id(),
        generation=settings.generation,
        replication=replication_from(settings, account, sensor.stable_decimals),
    )
    return agent, chain, sender


def connect(market: Market) -> Chain:
    """The market's chain, checked: the expected chain id, and code at every contract."""
    chain = Chain([market.rpc_url, *market.fallback_urls], chain_id=market.chain_id)
    chain.check_chain_id(market.chain_id)
    for name in ("stable_token", "risk_token", "pool", "router"):
        chain.require_code(name, getattr(market, name))
    return chain


def chain_ports(
    chain: Chain, market: Market, sender: TxSender, owner: str
) -> tuple[Sensor, Executor]:
    """The loop's senses and acts on the market's contracts."""
    stable, risk = Erc20(chain, market.stable_token), Erc20(chain, market.risk_token)
    dex = UniswapV2(chain, market.router, market.pool)
    sensor = Sensor(chain, dex, stable, risk, owner)
    return sensor, Executor(sender, dex, {"stable": stable, "risk": risk}, market.landlord)


def tx_sender(settings: Settings, chain: Chain, market: Market, account: LocalAccount) -> TxSender:
    """The account's transaction sender, journaled in the data dir."""
    c = settings.chain
    return TxSender(
        chain,
        account,
        Journal(settings.data_dir / "journal.sqlite"),
        market.chain_id,
        c.receipt_timeout_s,
        confirmations=c.confirmations,
        fee_cap_wei=to_base(c.fee_cap_gwei, 9),
    )


def replication_from(
    settings: Settings, account: LocalAccount, stable_decimals: int
) -> Replication | None:
    """How the agent makes children, when replication is enabled."""
    r, sd = settings.replication, stable_decimals
    if not r.enabled:
        return None
    rules = ReplicationLimits(
        min_runway=r.min_runway,
        share_pct=r.share_pct,
        max_child_stable=to_base(r.max_child_stable, sd),
        child_native=to_base(r.child_native, 18),
        max_children=r.max_children,
        cooldown_ticks=r.cooldown_ticks,
        child_min_stable=2 * to_base(settings.rent.amount, sd),
    )
    return Replication(
        rules,
        Nursery(settings.data_dir, account),
        account.address,
        settings.model.seed,
        mutate_persona=r.mutate_persona,
    )
