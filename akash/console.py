"""The Akash Console API (managed wallet): create a deployment, read bids, lease, close, top up.

A deployment can also be topped up by the Console itself (its per-deployment auto top-up, paid
from the managed wallet): `auto_top_up` reads that setting and `set_auto_top_up` turns it on or
off, creating the deployment's settings the first time.

Bodies are wrapped in `{"data": ...}`; the API key goes in `x-api-key`. Errors come back as
`ConsoleError` with the HTTP status and the API's own message; nothing is retried blindly
(creating a deployment twice would pay twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from akash.errors import ConsoleError, InsufficientFunds, NotAuthorized
from telemetry.redaction import secrets

DEFAULT_URL = "https://console-api.akash.network"
_UNAUTHORIZED = 401
_NOT_FOUND = 404
_FUNDS_WORDS = ("insufficient", "not enough", "balance")


@dataclass(frozen=True)
class Created:
    """A new deployment. The manifest is returned once: keep it."""

    dseq: str
    manifest: str
    tx_hash: str


@dataclass(frozen=True)
class Bid:
    provider: str
    dseq: str
    gseq: int
    oseq: int
    state: str
    denom: str
    amount: Decimal  # per block
    gpu_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeaseStatus:
    provider: str
    state: str  # active, closed, insufficient_funds
    uris: tuple[str, ...]
    gseq: int = 1
    oseq: int = 1
    price: Decimal | None = None  # the accepted bid, per block
    denom: str | None = None


@dataclass(frozen=True)
class Escrow:
    """A deployment's escrow account: what is left (`funds`) and how often it was topped up."""

    state: str  # open, closed, overdrawn
    balance: Decimal  # in `denom`, summed over the funds of that denom
    denom: str
    deposits: int


@dataclass(frozen=True)
class DeploymentStatus:
    dseq: str
    state: str
    leases: tuple[LeaseStatus, ...]
    escrow: Escrow | None = None


class ConsoleClient:
    """A thin typed client over the Console API operations the CLI uses."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_URL,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise NotAuthorized("no Console API key: set FORAGER_AKASH__API_KEY")
        self._http = httpx.Client(
            base_url=base_url,
            headers={"x-api-key": api_key, "content-type": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )

    def create_deployment(self, sdl: str, deposit_usd: float | None = None) -> Created:
        body: dict[str, Any] = {"sdl": sdl}
        if deposit_usd is not None:
            body["deposit"] = deposit_usd
        data = self._call("POST", "/v1/deployments", {"data": body})
        return Created(
            dseq=str(data["dseq"]),
            manifest=str(data["manifest"]),
            tx_hash=str(data["signTx"]["transactionHash"]),
        )

    def bids(self, dseq: str) -> list[Bid]:
        return [_bid(item) for item in self._call("GET", "/v1/bids", params={"dseq": dseq})]

    def create_lease(self, manifest: str, bid: Bid) -> DeploymentStatus:
        lease = {"dseq": bid.dseq, "gseq": bid.gseq, "oseq": bid.oseq, "provider": bid.provider}
        data = self._call("POST", "/v1/leases", {"manifest": manifest, "leases": [lease]})
        return _status(data)

    def deployment(self, dseq: str) -> DeploymentStatus:
        return _status(self._call("GET", f"/v1/deployments/{dseq}"))

    def close(self, dseq: str) -> bool:
        return bool(self._call("DELETE", f"/v1/deployments/{dseq}")["success"])

    def deposit(self, dseq: str, usd: float) -> DeploymentStatus:
        body = {"data": {"dseq": dseq, "deposit": usd}}
        return _status(self._call("POST", "/v1/deposit-deployment", body))

    def auto_top_up(self, dseq: str) -> bool | None:
        """Whether the Console tops the deployment up by itself; None when it has no settings.
        The settings are the API key's user's (`/v2/`: no user id to name)."""
        try:
            data = self._call("GET", f"/v2/deployment-settings/{dseq}")
        except ConsoleError as exc:
            if exc.status == _NOT_FOUND:
                return None
            raise
        return bool(data["autoTopUpEnabled"])

    def set_auto_top_up(self, dseq: str, enabled: bool) -> bool:
        """Turn the deployment's auto top-up on or off (idempotent); returns the setting now."""
        if self.auto_top_up(dseq) is None:
            body = {"data": {"dseq": dseq, "autoTopUpEnabled": enabled}}
            data = self._call("POST", "/v2/deployment-settings", body)
        else:
            body = {"data": {"autoTopUpEnabled": enabled}}
            data = self._call("PATCH", f"/v2/deployment-settings/{dseq}", body)
        return bool(data["autoTopUpEnabled"])

    def provider_host(self, address: str) -> str:
        """The provider's `hostUri` from its on-chain record (the only source of that URL)."""
        provider = self._call("GET", f"/v1/providers/{address}", wrapped=False)
        host = provider.get("hostUri") if isinstance(provider, dict) else None
        if not host:
            raise ConsoleError(f"GET /v1/providers/{address}: no hostUri in the answer")
        return str(host)

    def lease_token(self, scope: tuple[str, ...] = ("logs",), ttl_s: int = 1800) -> str:
        """A short-lived JWT the providers accept for these actions on the wallet's leases.

        The token is a credential: it is registered with the redactor before it is returned.
        """
        body = {"data": {"ttl": ttl_s, "leases": {"access": "scoped", "scope": list(scope)}}}
        data = self._call("POST", "/v1/create-jwt-token", body)
        token = str(data.get("token") or "") if isinstance(data, dict) else ""
        if not token:
            raise ConsoleError("POST /v1/create-jwt-token: no token in the answer")
        secrets.register(token)
        return token

    def _call(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        *,
        wrapped: bool = True,
    ) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise ConsoleError(f"{method} {path}: Console API unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise _error(method, path, response)
        try:
            body = response.json()
            return body["data"] if wrapped else body
        except (ValueError, KeyError, TypeError) as exc:
            raise ConsoleError(f"{method} {path}: unexpected answer (no data)") from exc

    def close_session(self) -> None:
        self._http.close()


def _error(method: str, path: str, response: httpx.Response) -> ConsoleError:
    try:
        body = response.json()
        message = str(body.get("message") or body.get("error") or body)
    except ValueError:
        message = response.text[:300]
    status = response.status_code
    text = f"{method} {path}: Console API answered {status}: {message}"
    if status == _UNAUTHORIZED:
        return NotAuthorized(f"{text} (check FORAGER_AKASH__API_KEY)", status)
    if any(word in message.lower() for word in _FUNDS_WORDS):
        return InsufficientFunds(f"{text} (top up the managed wallet)", status)
    return ConsoleError(text, status)


def _bid(item: dict[str, Any]) -> Bid:
    bid = item["bid"]
    models = []
    for offer in bid.get("resources_offer") or []:
        gpu = (offer.get("resources") or {}).get("gpu") or {}
        for attribute in gpu.get("attributes") or []:
            # keys look like vendor/nvidia/model/h100[/ram/80Gi...]
            parts = str(attribute.get("key", "")).split("/")
            if "model" in parts and parts.index("model") + 1 < len(parts):
                models.append(parts[parts.index("model") + 1])
    return Bid(
        provider=str(bid["id"]["provider"]),
        dseq=str(bid["id"]["dseq"]),
        gseq=int(bid["id"]["gseq"]),
        oseq=int(bid["id"]["oseq"]),
        state=str(bid["state"]),
        denom=str(bid["price"]["denom"]),
        amount=Decimal(str(bid["price"]["amount"])),
        gpu_models=tuple(models),
    )


def _status(data: dict[str, Any]) -> DeploymentStatus:
    deployment = data["deployment"]
    leases = []
    for lease in data.get("leases") or []:
        services = ((lease.get("status") or {}).get("services")) or {}
        uris = tuple(uri for service in services.values() for uri in service.get("uris") or [])
        lease_id = lease["id"]
        price = lease.get("price") or {}
        leases.append(
            LeaseStatus(
                str(lease_id["provider"]),
                str(lease["state"]),
                uris,
                gseq=int(lease_id.get("gseq", 1)),
                oseq=int(lease_id.get("oseq", 1)),
                price=Decimal(str(price["amount"])) if "amount" in price else None,
                denom=str(price["denom"]) if "denom" in price else None,
            )
        )
    dseq, state = str(deployment["id"]["dseq"]), str(deployment["state"])
    return DeploymentStatus(dseq, state, tuple(leases), _escrow(data.get("escrow_account")))


def _escrow(account: Any) -> Escrow | None:
    """The escrow's balance in its first denom (a deployment is funded in one denom)."""
    state = (account or {}).get("state") if isinstance(account, dict) else None
    if not isinstance(state, dict):
        return None
    funds = state.get("funds") or []
    denom = str(funds[0]["denom"]) if funds else "uact"
    balance = sum(
        (Decimal(str(coin["amount"])) for coin in funds if coin.get("denom") == denom), Decimal(0)
    )
    deposits = len(state.get("deposits") or [])
    return Escrow(str(state.get("state", "")), balance, denom, deposits)


def pick_bid(
    bids: list[Bid], gpu: str | None = None, max_price: Decimal | None = None
) -> Bid | None:
    """The cheapest open bid (offering `gpu` when asked), or None. Ties: provider address."""
    open_bids = [b for b in bids if b.state == "open"]
    if gpu:
        open_bids = [b for b in open_bids if gpu.lower() in (m.lower() for m in b.gpu_models)]
    if max_price is not None:
        open_bids = [b for b in open_bids if b.amount <= max_price]
    return min(open_bids, key=lambda b: (b.amount, b.provider), default=None)
