"""The one settings object, parsed once at start.

Sources, strongest first: CLI flags (applied by the CLI), `FORAGER_*` environment variables
(nested sections with `__`, e.g. `FORAGER_RENT__AMOUNT`), a TOML file named by
`FORAGER_CONFIG`, then the defaults below.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agent.errors import ConfigError

_ADDRESS_FIELDS = ("stable_token", "risk_token", "pool", "router", "landlord")

SHARE_RPC_URL_VAR = "FORAGER_AKASH__SHARE_RPC_URL"
UNSHARED_RPC_URL = (
    "FORAGER_CHAIN__RPC_URL is set (a live chain), and an SDL's environment is visible to the "
    "Akash provider: an API key in an RPC URL would be too. To put the RPC URL (and "
    f"FORAGER_CHAIN__RPC_URLS) in the SDL anyway, set {SHARE_RPC_URL_VAR}=true or pass "
    "--share-rpc-url (without it the agent would start a local arena, not join the chain)"
)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openforager"


# the bundled model's encodings: as shipped, and derived (agent.model.cache)
ModelWeights = Literal["q4_1", "q8_0"]


class ModelSettings(BaseModel):
    """The local language model."""

    path: Path | None = Field(None, description="GGUF file; default: the bundled SmolLM2-135M")
    weights: ModelWeights = Field(
        "q4_1",
        description="the bundled model's encoding: as shipped (q4_1, what every generation was "
        "trained and judged on), or re-encoded to 8 bits once into the model cache (q8_0: "
        "~1.5x faster prompt evaluation on a CPU without Q4_1's fast kernels; answers close "
        "to q4_1's, not equal); not with `path`",
    )
    lora: Path | None = Field(None, description="a LoRA adapter (GGUF) on top, from forager train")
    n_ctx: int = Field(1536, ge=256, description="the prompt needs about 1 100 tokens")
    n_batch: int = Field(256, ge=8, le=4096, description="prompt tokens evaluated per batch")
    flash_attn: bool = Field(True, description="llama.cpp's flash attention (faster, less memory)")
    n_threads: int | None = Field(None, ge=1, description="default: the machine's cores, max 8")
    n_gpu_layers: int = Field(0, ge=-1)
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    max_tokens: int = Field(96, ge=1, le=1024)
    seed: int = 0
    server_url: str | None = Field(
        None,
        description="a `forager model serve` on this node to share instead of loading the model",
    )
    prompt: Literal["advice", "plain", "compact"] = Field(
        "advice",
        description="the system prompt: the market described with trading advice, or plain "
        "(the actions only; what the model does with it is what its weights know), or compact "
        "(plain, with an observation of ~25 new tokens a tick instead of ~190)",
    )
    decode: Literal["answers", "grammar"] = Field(
        "answers",
        description="in this process, an answer with no free text (the plain prompt's) is "
        "chosen among its possible answers by their likelihoods (answers), or generated under "
        "the grammar (grammar); an answer with a reason is always generated",
    )

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _weights_of_the_bundled_model(self) -> ModelSettings:
        if self.path is not None and self.weights != "q4_1":
            raise ValueError(
                f"weights {self.weights} (FORAGER_MODEL__WEIGHTS) re-encodes the bundled "
                f"model and path {self.path} (FORAGER_MODEL__PATH) names a file of its own: "
                "set one of them"
            )
        return self


class ChainSettings(BaseModel):
    """A live chain. With no `rpc_url` the agent starts its own local arena.

    RPC URLs are secrets: providers put API keys in them (`/v2/KEY`, `?apikey=KEY`, `user:KEY@`).
    They are shown only as `telemetry.redaction.redact_url` shows them, and go into an SDL only
    with `akash.share_rpc_url`.
    """

    rpc_url: SecretStr | None = Field(None, description="the chain's JSON-RPC endpoint (secret)")
    rpc_urls: list[SecretStr] = Field(
        default_factory=list, description="fallback RPC endpoints (secret), a JSON list"
    )
    chain_id: int | None = None
    stable_token: str | None = None
    risk_token: str | None = None
    pool: str | None = None
    router: str | None = None
    landlord: str | None = None
    receipt_timeout_s: float = Field(30.0, gt=0, description="before a stuck tx is replaced")
    confirmations: int = Field(1, ge=1, description="blocks before an action counts as done")
    fee_cap_gwei: Decimal = Field(Decimal(500), gt=0, description="most a replacement may pay")

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_rpc_url(value)
        return value

    @field_validator("rpc_urls")
    @classmethod
    def _rpc_urls(cls, values: list[SecretStr]) -> list[SecretStr]:
        for value in values:
            _check_rpc_url(value)
        return values

    def urls(self) -> list[str]:
        """The RPC URL and its fallbacks, in the order they are tried (secrets: never show)."""
        if self.rpc_url is None:
            return []
        return [url.get_secret_value() for url in (self.rpc_url, *self.rpc_urls)]

    def missing(self) -> list[str]:
        """Names of the settings a live chain still needs."""
        names = ["chain_id", *_ADDRESS_FIELDS]
        return [f"FORAGER_CHAIN__{n.upper()}" for n in names if getattr(self, n) is None]


def _check_rpc_url(value: SecretStr) -> None:
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Never echo the value: it may hold an API key.
        raise ValueError("expected an http:// or https:// URL with a host")


class ArenaSettings(BaseModel):
    """The embedded local world."""

    anvil: str = Field("anvil", description="anvil binary (name on PATH or a path)")
    seed: int = 0
    liquidity_stable: Decimal = Field(Decimal(100_000), gt=0)
    start_price: Decimal = Field(Decimal(2), gt=0)
    drift: float = 0.0
    volatility: float = Field(0.0007, ge=0.0, le=0.5, description="of the fair value, per step")
    regime_switch: float = Field(0.002, ge=0.0, le=1.0, description="calm <-> storm per step")
    storm_factor: float = Field(3.0, ge=1.0, le=20.0, description="volatility x in a storm")
    shock_prob: float = Field(0.001, ge=0.0, le=1.0, description="chance of a jump per step")
    shock_size: float = Field(0.04, ge=0.0, le=2.0, description="a jump, in log price")
    replay_csv: Path | None = Field(None, description="replay this price series instead")
    noise: float = Field(0.05, ge=0.0, le=0.5, description="noise traders' push per step (log)")
    arb_strength: float = Field(
        0.2, gt=0.0, le=1.0, description="share of the gap to fair value closed per step"
    )
    weather_interval_s: float = Field(1.0, ge=0.0, description="0 stops the weather")
    save_interval_s: float = Field(
        2.0, ge=0.0, description="seconds between saves of the world (0: only at stop and funding)"
    )
    new_world: bool = Field(
        False, description="deploy a new world when an agent's saved one is missing or unreadable"
    )
    paper_think_s: float | None = Field(
        None,
        ge=0.0,
        description="on paper, seconds each decision lasts while the weather moves "
        "(unset: the decision's measured latency)",
    )
    agent_native: Decimal = Field(Decimal(10), ge=0, description="ETH for gas")
    # Calibrated with `noise` (docs/world.md): doing nothing dies within the evaluation's
    # 300 ticks, trading at random dies sooner, the best rule teacher lives.
    agent_stable: Decimal = Field(Decimal(100), ge=0)
    agent_risk: Decimal = Field(Decimal(0), ge=0)
    file: Path | None = Field(
        None, description="join a shared arena (its connection file) instead of starting one"
    )


class RentSettings(BaseModel):
    """What survival costs."""

    amount: Decimal = Field(Decimal(5), gt=0, description="stable units per period")
    period_ticks: int = Field(10, ge=1)
    grace_ticks: int = Field(5, ge=0)
    sell_for_rent: bool = Field(
        True, description="when rent is owed and STABLE is short, sell RISK to pay it"
    )


class ReplicationSettings(BaseModel):
    """When an agent may create a child, and what the policy lets it give."""

    enabled: bool = False
    min_runway: float = Field(60.0, gt=0, description="rent periods of runway before a child")
    share_pct: int = Field(25, ge=1, le=50, description="of spendable stable given to a child")
    max_child_stable: Decimal = Field(Decimal(150), gt=0, description="cap per child")
    child_native: Decimal = Field(Decimal("0.05"), gt=0, description="gas money per child")
    max_children: int = Field(2, ge=0, le=16)
    cooldown_ticks: int = Field(50, ge=1, description="ticks between two children")
    mutate_persona: float = Field(
        0.0, ge=0.0, le=1.0, description="chance a model's child gets another persona"
    )


class PolicySettings(BaseModel):
    """The guard's limits. Everything not allowed here is denied."""

    max_swap_pct: int = Field(50, ge=0, le=100, description="of the sold balance, per action")
    max_swap_stable: Decimal = Field(Decimal(100), ge=0, description="stable value per action")
    reserve_periods: int = Field(2, ge=0, description="rent periods of stable never spent")
    window_hour_stable: Decimal = Field(
        Decimal(3000), ge=0, description="swapped or deposited per rolling hour"
    )
    window_day_stable: Decimal = Field(
        Decimal(30000), ge=0, description="swapped or deposited per rolling day"
    )
    max_slippage_bps: int = Field(100, ge=0, le=5000)
    max_deviation_bps: int = Field(
        3000, ge=0, le=5000, description="pool price vs the agent's recent median"
    )
    deadline_s: int = Field(120, ge=10)


class WalletSettings(BaseModel):
    """Where the key lives."""

    keystore: Path | None = None
    keystore_json: SecretStr | None = Field(
        None, description="the encrypted keystore document itself (for containers)"
    )
    password_file: Path | None = None
    password: SecretStr | None = None


class HttpSettings(BaseModel):
    host: str = Field("127.0.0.1", description="loopback unless told (the image sets 0.0.0.0)")
    port: int = Field(8080, ge=0, le=65535)
    control_token: SecretStr | None = Field(None, description="enables POST /control/*")
    nice: int = Field(10, ge=0, le=19, description="the HTTP thread's nice value (Linux)")


class AkashSettings(BaseModel):
    """The Akash Console API (managed wallet), and what an SDL may carry."""

    api_key: SecretStr | None = None
    console_url: str = "https://console-api.akash.network"
    share_rpc_url: bool = Field(
        False,
        description="put a live chain's RPC URLs (secrets) in rendered SDLs, where the provider "
        "sees them (also --share-rpc-url)",
    )


class LandlordSettings(BaseModel):
    """`forager landlord`: the book of tenants, and how it keeps their leases funded."""

    dir: Path = Field(Path("landlord"), description="the book (SQLite) and tenants' final state")
    margin: Decimal = Field(Decimal("0.2"), ge=0, description="rent over the lease price")
    stable_per_usd: Decimal = Field(Decimal(1), gt=0, description="stable tokens per USD")
    usd_per_token: Decimal = Field(Decimal(1), gt=0, description="USD per ACT (or AKT)")
    block_s: Decimal = Field(Decimal(6), gt=0, description="Akash block time, seconds")
    stable_decimals: int = Field(6, ge=0, le=36, description="the stable token's decimals")
    deposit_usd: Decimal = Field(Decimal(5), gt=0, description="one top-up of a paid-up lease")
    low_escrow_hours: Decimal = Field(
        Decimal(24), gt=0, description="top up when the escrow lasts less than this at the bid"
    )
    auto_top_up: bool = Field(
        False,
        description="a managed wallet: let the Console top up paid-up leases (its per-deployment "
        "auto top-up, turned off while a tenant owes rent) instead of depositing",
    )
    every_s: float = Field(60.0, gt=0, description="seconds between passes")
    agent_timeout_s: float = Field(10.0, gt=0, description="reading an agent's /state, /series")


class TelemetrySettings(BaseModel):
    service_name: str = "openforager"
    log_level: str = "info"
    capture_content: bool = Field(False, description="put prompt and completion text in spans")


class Settings(BaseSettings):
    """Every setting of one agent."""

    model_config = SettingsConfigDict(
        env_prefix="FORAGER_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Path("forager-data")
    interval_s: float = Field(5.0, gt=0)
    ticks: int | None = Field(None, ge=1, description="stop after this many ticks")
    linger_s: float = Field(30.0, ge=0, description="how long a dead agent keeps serving")
    start_retry_s: float = Field(15.0, gt=0, description="retry after a model or chain failure")
    generation: int = Field(0, ge=0)
    strategy: Literal["llm", "hold", "momentum", "mean_reversion", "random", "liquidity"] = Field(
        "llm",
        description="llm (the model) or a rule: hold, momentum, mean_reversion, random, "
        "liquidity (a passive liquidity provider)",
    )
    persona: Literal["cautious", "momentum", "contrarian", "frugal"] | None = Field(
        None, description="the model's temperament, added to its system prompt"
    )
    cache_dir: Path = Field(default_factory=default_cache_dir)
    model: ModelSettings = ModelSettings()
    chain: ChainSettings = ChainSettings()
    arena: ArenaSettings = ArenaSettings()
    rent: RentSettings = RentSettings()
    policy: PolicySettings = PolicySettings()
    replication: ReplicationSettings = ReplicationSettings()
    parent_id: str | None = Field(None, description="the parent's agent id (set for children)")
    wallet: WalletSettings = WalletSettings()
    http: HttpSettings = HttpSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    akash: AkashSettings = AkashSettings()
    landlord: LandlordSettings = LandlordSettings()

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get("FORAGER_CONFIG")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_file)))
        return tuple(sources)

    @property
    def uses_arena(self) -> bool:
        return self.chain.rpc_url is None


def load_settings(**overrides: Any) -> Settings:
    """Parse settings once; a bad value raises `ConfigError` naming it and what was expected."""
    toml_file = os.environ.get("FORAGER_CONFIG")
    if toml_file and not Path(toml_file).is_file():
        raise ConfigError(f"FORAGER_CONFIG={toml_file!r} is not a readable TOML file")
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None  # the cause echoes inputs: maybe a secret
    if not settings.uses_arena and settings.chain.missing():
        raise ConfigError(
            "FORAGER_CHAIN__RPC_URL is set, so a live chain also needs: "
            + ", ".join(settings.chain.missing())
        )
    return settings


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = "FORAGER_" + "__".join(str(p).upper() for p in error["loc"])
        # Never echo the offending input: it may be a secret.
        lines.append(f"{name}: {error['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def settings_env(settings: Settings) -> dict[str, str]:
    """The agent's settings as container environment variables (an SDL's env).

    Nothing secret, except a live chain's RPC URLs when the operator consents
    (`akash.share_rpc_url`): an SDL's env is visible to the provider. Without consent a live
    chain raises `ConfigError` rather than leave the URL out, which would send the agent to a
    local arena of its own.
    """
    env = {
        "FORAGER_INTERVAL_S": str(settings.interval_s),
        "FORAGER_GENERATION": str(settings.generation),
        "FORAGER_STRATEGY": settings.strategy,
        **({"FORAGER_PERSONA": settings.persona} if settings.persona else {}),
        **(
            {"FORAGER_MODEL__PROMPT": settings.model.prompt}
            if settings.model.prompt != "advice"
            else {}
        ),
        "FORAGER_RENT__AMOUNT": str(settings.rent.amount),
        "FORAGER_RENT__PERIOD_TICKS": str(settings.rent.period_ticks),
        "FORAGER_RENT__GRACE_TICKS": str(settings.rent.grace_ticks),
    }
    if settings.chain.rpc_url is not None:
        env |= _chain_env(settings.chain, share_rpc_url=settings.akash.share_rpc_url)
    return env


def _chain_env(chain: ChainSettings, *, share_rpc_url: bool) -> dict[str, str]:
    if not share_rpc_url:
        raise ConfigError(UNSHARED_RPC_URL)
    url, *fallbacks = chain.urls()
    env = {"FORAGER_CHAIN__RPC_URL": url}
    if fallbacks:
        env["FORAGER_CHAIN__RPC_URLS"] = json.dumps(fallbacks)  # parsed back as a JSON list
    for name in ("chain_id", *_ADDRESS_FIELDS):
        env[f"FORAGER_CHAIN__{name.upper()}"] = str(getattr(chain, name))
    return env
