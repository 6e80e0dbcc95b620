"""The landlord's pass: keep a tenant's lease funded while it pays rent, free it when it dies.

For every tenant in the book, each pass:

  rent paid  = the stable token's `Transfer` logs from the agent to the landlord address since
               the tenant's start block (the chain, never the agent's word);
  rent due   = whole periods elapsed since the start (chain time) * the amount;
  the lease  = the deployment's state, escrow and accepted bid, from the Console API;

then: a lease the provider closed, or an overdrawn one, is recorded and left alone; an agent
whose `/state` says it is dead, or that is past its grace period (the first unpaid period
ended more than `grace_ticks` ago), has its final `/state` and `/series` kept and its
deployment closed; a paid-up agent whose escrow lasts less than `low_escrow_hours` at the bid
price gets a deposit of `deposit_usd`. With `auto_top_up` (a managed wallet whose Console tops
deployments up itself) the landlord deposits nothing: it keeps the deployment's auto top-up on
while the agent is paid up and turns it off as soon as it is not, so an agent that stops paying
is funded by nobody until it pays again or its grace ends.

Each act is journalled before the call (`intent`) and after it (`done`); an open intent is
answered on the next pass by reading the Console (see `Landlord.resolve`). A Console or chain
error leaves the tenants as they were: it is journalled as `failed`, logged, and the next pass
tries again.

Metrics (OpenTelemetry, and `/metrics` of `forager landlord run`): passes, acts by kind and
outcome, tenants by status, and per tenant its escrow in hours and its periods behind.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import httpx
import structlog
from opentelemetry import metrics, trace

from agent.populations.landlord_book import (
    ACTIVE,
    CLOSED,
    OVERDRAWN,
    PROVIDER_CLOSED,
    Book,
    Line,
    Tenant,
)
from akash.console import DeploymentStatus
from akash.errors import ConsoleError
from wallets.chain import Chain, Head
from wallets.errors import ChainError
from wallets.tokens import Erc20

log = structlog.get_logger()
tracer = trace.get_tracer("forager.landlord")

_GONE_LEASES = ("closed", "insufficient_funds")
AUTO_TOP_UP = "auto_top_up"  # the journal's name for setting the Console's auto top-up


class LeaseConsole(Protocol):
    """The Console API calls a landlord makes (`akash.console.ConsoleClient` is one)."""

    def deployment(self, dseq: str) -> DeploymentStatus: ...

    def deposit(self, dseq: str, usd: float) -> DeploymentStatus: ...

    def close(self, dseq: str) -> bool: ...

    def auto_top_up(self, dseq: str) -> bool | None: ...

    def set_auto_top_up(self, dseq: str, enabled: bool) -> bool: ...


@dataclass(frozen=True)
class Terms:
    """How the landlord keeps leases funded."""

    deposit_usd: Decimal = Decimal(5)
    low_escrow_hours: Decimal = Decimal(24)
    block_s: Decimal = Decimal(6)
    agent_timeout_s: float = 10.0
    auto_top_up: bool = False  # the Console tops up a paid-up tenant; no deposits


@dataclass(frozen=True)
class Standing:
    """What a tenant owes at a block: paid and due in base units, and whole periods of each."""

    paid: int
    due: int
    periods_paid: int
    periods_due: int
    past_grace: bool

    @property
    def paid_up(self) -> bool:
        return self.periods_paid >= self.periods_due


@dataclass(frozen=True)
class TenantView:
    """One tenant as the last pass saw it: what `/tenants` serves and `show` prints."""

    dseq: str
    address: str
    status: str
    fate: str | None
    paid_through: int | None  # whole periods paid
    periods_due: int | None
    escrow_left: str | None
    escrow_hours: float | None
    lease: str | None
    bid: str | None
    last_action: str | None
    error: str | None = None
    auto_top_up: bool | None = None  # the Console's setting, where the landlord uses it


def standing(tenant: Tenant, paid: int, now_ts: int) -> Standing:
    """The tenant's standing at chain time `now_ts` (pure)."""
    elapsed = Fraction(max(0, now_ts - tenant.start_ts))
    periods_due = int(elapsed // tenant.period_s)
    periods_paid = paid // tenant.amount
    # The first unpaid period ended at (periods_paid + 1) periods; grace runs from there.
    deadline = (periods_paid + 1) * tenant.period_s + tenant.grace_s
    return Standing(
        paid, periods_due * tenant.amount, periods_paid, periods_due, elapsed > deadline
    )


def escrow_hours(status: DeploymentStatus, block_s: Decimal) -> float | None:
    """How long the escrow lasts at the accepted bid, or None when either is unknown."""
    price = next((lease.price for lease in status.leases if lease.price), None)
    if status.escrow is None or not price:
        return None
    return float(status.escrow.balance / price * block_s / 3600)


class RentLedger:
    """Rent as the chain records it: Transfer logs of the stable token to the landlord."""

    def __init__(self, chain: Chain, stable_token: str, landlord: str) -> None:
        self.chain = chain
        self.token = Erc20(chain, stable_token)
        self.landlord = landlord

    def head(self) -> Head:
        return self.chain.head()

    def paid(self, tenant: Tenant, to_block: int) -> int:
        return self.token.transferred(tenant.address, self.landlord, tenant.start_block, to_block)


class LandlordMetrics:
    """The landlord's instruments; `passed` reports a pass's views."""

    def __init__(self) -> None:
        meter = metrics.get_meter("openforager.landlord")
        self.passes = meter.create_counter("forager.landlord.passes", unit="{pass}")
        self.acts = meter.create_counter("forager.landlord.acts", unit="{act}")
        self.tenants = meter.create_gauge("forager.landlord.tenants", unit="{tenant}")
        self.escrow = meter.create_gauge("forager.landlord.escrow_hours", unit="h")
        self.behind = meter.create_gauge("forager.landlord.periods_behind", unit="{period}")

    def act(self, kind: str, outcome: str) -> None:
        self.acts.add(1, {"kind": kind, "outcome": outcome})

    def passed(self, views: tuple[TenantView, ...]) -> None:
        self.passes.add(1)
        for status in (ACTIVE, CLOSED, OVERDRAWN, PROVIDER_CLOSED):
            self.tenants.set(sum(v.status == status for v in views), {"status": status})
        for view in views:
            tenant = {"dseq": view.dseq}
            if view.escrow_hours is not None:
                self.escrow.set(view.escrow_hours, tenant)
            if view.periods_due is not None and view.paid_through is not None:
                self.behind.set(max(0, view.periods_due - view.paid_through), tenant)


class Landlord:
    """Runs passes over the book. One pass at a time; `views` is replaced whole after each."""

    def __init__(
        self, book: Book, console: LeaseConsole, ledger: RentLedger, folder: Path, terms: Terms
    ) -> None:
        self.book, self.console, self.ledger = book, console, ledger
        self.folder, self.terms = folder, terms
        self.views: tuple[TenantView, ...] = ()
        self.metrics = LandlordMetrics()

    def run_pass(self) -> tuple[TenantView, ...]:
        """Answer open intents, then visit every tenant; returns (and keeps) what it saw."""
        with tracer.start_as_current_span("landlord.pass") as span:
            self.resolve()
            head = self.ledger.head()
            views = tuple(self._visit_traced(tenant, head) for tenant in self.book.tenants())
            self.views = views
            self.metrics.passed(views)
            span.set_attribute("forager.tenants", len(views))
            log.info("landlord_pass_finished", tenants=len(views), block=head.number)
        return views

    def _visit_traced(self, tenant: Tenant, head: Head) -> TenantView:
        with tracer.start_as_current_span("landlord.tenant") as span:
            span.set_attribute("forager.dseq", tenant.dseq)
            view = self._visit(tenant, head)
            span.set_attribute("forager.tenant.status", view.status)
            return view

    def resolve(self) -> None:
        """Answer every intent left without a `done` line by reading the Console.

        A close: done if the deployment is closed, else close it. A deposit: done if the
        escrow has a new deposit or a higher balance than the intent recorded, else deposit. An
        auto top-up setting: set it again (setting it is idempotent).
        """
        for line in self.book.open_intents():
            try:
                status = self.console.deployment(line.dseq)
                if line.kind == "close":
                    self._finish_close(line, status)
                elif line.kind == "deposit":
                    self._finish_deposit(line, status)
                elif line.kind == AUTO_TOP_UP:
                    enabled = self.console.set_auto_top_up(line.dseq, bool(line.data["enabled"]))
                    self._auto_set(line, enabled, recovered=True)
            except ConsoleError as exc:
                self._console_failed(line.dseq, line.kind, exc, line.id)

    def _finish_close(self, line: Line, status: DeploymentStatus) -> None:
        already = status.state == "closed"
        if not already:
            self.console.close(line.dseq)
        self._closed(line, recovered=True, already=already)

    def _finish_deposit(self, line: Line, status: DeploymentStatus) -> None:
        before = line.data
        escrow = status.escrow
        landed = escrow is not None and (
            escrow.deposits > int(before["deposits"]) or escrow.balance > Decimal(before["balance"])
        )
        if not landed:
            status = self.console.deposit(line.dseq, float(before["usd"]))
        self._deposited(line, status, recovered=True, already=landed)

    def _visit(self, tenant: Tenant, head: Head) -> TenantView:
        if tenant.status != ACTIVE or any(i.dseq == tenant.dseq for i in self.book.open_intents()):
            return self._view(tenant)
        try:
            status = self.console.deployment(tenant.dseq)
        except ConsoleError as exc:
            self._console_failed(tenant.dseq, "read", exc)
            return self._view(tenant, error=str(exc))
        tenant = self._record_bid(tenant, status)
        if _gone(status):
            return self._view(self._record_gone(tenant, status), status)
        try:
            owes = standing(tenant, self.ledger.paid(tenant, head.number), head.timestamp)
        except ChainError as exc:
            log.error("landlord_chain_failed", dseq=tenant.dseq, error=str(exc))
            return self._view(tenant, status, error=str(exc))
        agent = self._agent_state(tenant)
        try:
            if agent is not None and agent.get("alive") is False:
                return self._evict(tenant, "died", head, owes, agent.get("tick"))
            if owes.past_grace:
                return self._evict(tenant, "evicted", head, owes, None)
            if self.terms.auto_top_up:
                return self._auto_top_up(tenant, status, owes)
            if owes.paid_up and self._low(status):
                return self._top_up(tenant, status, owes)
        except ConsoleError as exc:
            return self._view(tenant, status, owes, error=str(exc))
        return self._view(tenant, status, owes)

    def _record_bid(self, tenant: Tenant, status: DeploymentStatus) -> Tenant:
        lease = next((lease for lease in status.leases if lease.price is not None), None)
        if lease is None or tenant.bid_price is not None:
            return tenant
        self.book.update(tenant.dseq, bid_price=str(lease.price), bid_denom=lease.denom)
        self.book.note(tenant.dseq, "bid_recorded", {"price": lease.price, "denom": lease.denom})
        return self.book.tenant(tenant.dseq)

    def _record_gone(self, tenant: Tenant, status: DeploymentStatus) -> Tenant:
        overdrawn = any(lease.state == "insufficient_funds" for lease in status.leases) or (
            status.escrow is not None and status.escrow.state == OVERDRAWN
        )
        fate = OVERDRAWN if overdrawn else PROVIDER_CLOSED
        self.book.note(tenant.dseq, fate, {"state": status.state})
        self.book.update(tenant.dseq, status=fate, fate=fate, last_action=f"recorded {fate}")
        log.warning("lease_lost", dseq=tenant.dseq, fate=fate, deployment_state=status.state)
        return self.book.tenant(tenant.dseq)

    def _low(self, status: DeploymentStatus) -> bool:
        hours = escrow_hours(status, self.terms.block_s)
        return hours is not None and Decimal(str(hours)) < self.terms.low_escrow_hours

    def _top_up(self, tenant: Tenant, status: DeploymentStatus, owes: Standing) -> TenantView:
        escrow = status.escrow
        assert escrow is not None  # _low saw it
        usd = self.terms.deposit_usd
        data = {"usd": usd, "balance": escrow.balance, "deposits": escrow.deposits}
        line = self.book.line(self.book.intent(tenant.dseq, "deposit", data))
        try:
            after = self.console.deposit(tenant.dseq, float(usd))
        except ConsoleError as exc:
            self._console_failed(tenant.dseq, "deposit", exc, line.id)
            raise
        self._deposited(line, after, recovered=False, already=False)
        return self._view(self.book.tenant(tenant.dseq), after, owes)

    def _deposited(
        self, line: Line, status: DeploymentStatus, *, recovered: bool, already: bool
    ) -> None:
        balance = status.escrow.balance if status.escrow else None
        self.book.done(line, {"balance": balance, "recovered": recovered, "already": already})
        action = f"deposited {line.data['usd']} USD"
        self.book.update(line.dseq, last_action=action)
        self.metrics.act("deposit", "recovered" if recovered else "done")
        log.info("lease_topped_up", dseq=line.dseq, usd=str(line.data["usd"]), recovered=recovered)

    def _auto_top_up(self, tenant: Tenant, status: DeploymentStatus, owes: Standing) -> TenantView:
        """The Console's auto top-up on while the tenant is paid up, off while it is not."""
        wanted = owes.paid_up
        if bool(self.console.auto_top_up(tenant.dseq)) == wanted:
            return self._view(tenant, status, owes, auto_top_up=wanted)
        line = self.book.line(self.book.intent(tenant.dseq, AUTO_TOP_UP, {"enabled": wanted}))
        try:
            enabled = self.console.set_auto_top_up(tenant.dseq, wanted)
        except ConsoleError as exc:
            self._console_failed(tenant.dseq, AUTO_TOP_UP, exc, line.id)
            raise
        self._auto_set(line, enabled, recovered=False)
        return self._view(self.book.tenant(tenant.dseq), status, owes, auto_top_up=enabled)

    def _auto_set(self, line: Line, enabled: bool, *, recovered: bool) -> None:
        self.book.done(line, {"enabled": enabled, "recovered": recovered})
        self.book.update(line.dseq, last_action=f"auto top-up {'on' if enabled else 'off'}")
        self.metrics.act(AUTO_TOP_UP, "recovered" if recovered else "done")
        log.info("lease_auto_top_up", dseq=line.dseq, enabled=enabled, recovered=recovered)

    def _evict(self, tenant: Tenant, why: str, head: Head, owes: Standing, tick: Any) -> TenantView:
        final = self._keep_final(tenant)
        data = {"why": why, "block": head.number, "tick": tick, "final": final}
        data |= {"paid": owes.paid, "due": owes.due}
        line = self.book.line(self.book.intent(tenant.dseq, "close", data))
        try:
            self.console.close(tenant.dseq)
        except ConsoleError as exc:
            self._console_failed(tenant.dseq, "close", exc, line.id)
            raise
        self._closed(line, recovered=False, already=False)
        return self._view(self.book.tenant(tenant.dseq), None, owes)

    def _closed(self, line: Line, *, recovered: bool, already: bool) -> None:
        self.book.done(line, {"recovered": recovered, "already": already})
        why, block = line.data["why"], line.data["block"]
        tick = line.data.get("tick")
        self.book.update(
            line.dseq,
            status=CLOSED,
            fate=why,
            died_tick=int(tick) if isinstance(tick, int) else None,
            closed_block=block,
            final=line.data.get("final"),
            last_action=f"closed ({why}) at block {block}",
        )
        self.metrics.act("close", "recovered" if recovered else "done")
        log.info("lease_closed", dseq=line.dseq, why=why, block=block, recovered=recovered)

    def _agent_state(self, tenant: Tenant) -> dict[str, Any] | None:
        if not tenant.state_url:
            return None
        try:
            answer = _get_json(tenant.state_url, "/state", self.terms.agent_timeout_s)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("agent_unreachable", dseq=tenant.dseq, error=str(exc)[:200])
            return None
        return answer if isinstance(answer, dict) else None

    def _keep_final(self, tenant: Tenant) -> str:
        """Fetch and keep the agent's last /state and /series; say what was kept."""
        if not tenant.state_url:
            return "no state url"
        where = final_dir(self.folder, tenant.dseq)
        where.mkdir(parents=True, exist_ok=True)
        kept = []
        for name in ("state", "series"):
            try:
                answer = _get_json(tenant.state_url, f"/{name}", self.terms.agent_timeout_s)
            except (httpx.HTTPError, ValueError) as exc:
                kept.append(f"{name}: unreachable ({str(exc)[:120]})")
                continue
            tmp = where / f"{name}.json.tmp"
            tmp.write_text(json.dumps(answer, indent=1))
            tmp.replace(where / f"{name}.json")
            kept.append(f"{name}: kept")
        self.book.note(tenant.dseq, "final_state", {"kept": kept})
        log.info("final_state_kept", dseq=tenant.dseq, kept=kept)
        return "; ".join(kept)

    def _view(
        self,
        tenant: Tenant,
        status: DeploymentStatus | None = None,
        owes: Standing | None = None,
        error: str | None = None,
        auto_top_up: bool | None = None,
    ) -> TenantView:
        view = _view(tenant, status, owes, error, self.terms.block_s)
        return (
            dataclasses.replace(view, auto_top_up=auto_top_up) if auto_top_up is not None else view
        )

    def _console_failed(
        self, dseq: str, kind: str, exc: ConsoleError, ref: int | None = None
    ) -> None:
        self.book.failed(dseq, kind, str(exc), ref)
        self.metrics.act(kind, "failed")
        log.error(
            "landlord_console_failed",
            dseq=dseq,
            step=kind,
            status=exc.status,
            error_type=type(exc).__name__,
            error=str(exc),
        )


def final_dir(folder: Path, dseq: str) -> Path:
    """Where a landlord in `folder` keeps a closed tenant's last `state.json`, `series.json`."""
    return folder / "final" / dseq


def _gone(status: DeploymentStatus) -> bool:
    if status.state == "closed" or (status.escrow and status.escrow.state == OVERDRAWN):
        return True
    return bool(status.leases) and all(lease.state in _GONE_LEASES for lease in status.leases)


def _get_json(base_url: str, path: str, timeout_s: float) -> Any:
    url = base_url.rstrip("/").removesuffix("/state") + path
    response = httpx.get(url, timeout=timeout_s)
    response.raise_for_status()
    return response.json()


def _view(
    tenant: Tenant,
    status: DeploymentStatus | None = None,
    owes: Standing | None = None,
    error: str | None = None,
    block_s: Decimal = Decimal(6),
) -> TenantView:
    escrow = status.escrow if status else None
    bid = f"{tenant.bid_price} {tenant.bid_denom}/block" if tenant.bid_price else None
    return TenantView(
        dseq=tenant.dseq,
        address=tenant.address,
        status=tenant.status,
        fate=tenant.fate,
        paid_through=owes.periods_paid if owes else None,
        periods_due=owes.periods_due if owes else None,
        escrow_left=f"{escrow.balance} {escrow.denom}" if escrow else None,
        escrow_hours=escrow_hours(status, block_s) if status else None,
        lease=status.state if status else None,
        bid=bid,
        last_action=tenant.last_action,
        error=error,
    )
