"""Fleets on Akash: one deployment per agent through the Console, and the children they fund.

`deploy_fleet` deploys N agents (each its own SDL; with `with_keys` each its own wallet, made
here and shipped as secret settings). `supervise_remote` asks each deployed parent which
children it funded and deploys each child with the wallet derived from the parent's keystore,
which the operator holds. Every outcome is recorded in `deployments.json` as it happens, with
the rent terms the agent's SDL set (`rent`), which the landlord's book takes it on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
from eth_account import Account
from eth_account.signers.local import LocalAccount

from agent.runtime.wallet_env import wallet_env
from akash.console import ConsoleClient
from akash.deploy import deploy
from akash.errors import AkashError
from akash.sdl import SdlOptions, render_sdl
from wallets.keystore import derive_child_key, load_keystore, make_wallet, read_password

log = structlog.get_logger()

Entry = dict[str, Any]  # one line of deployments.json: who the agent is, and its lease or error

# The rent terms an agent is deployed with, as its SDL's env sets them: each entry keeps them
# (`rent`), so the landlord's book takes an agent on the terms it actually runs under.
_RENT_ENV = {
    "amount": "FORAGER_RENT__AMOUNT",
    "period_ticks": "FORAGER_RENT__PERIOD_TICKS",
    "grace_ticks": "FORAGER_RENT__GRACE_TICKS",
    "interval_s": "FORAGER_INTERVAL_S",
}


@dataclass(frozen=True)
class Lease:
    """How the fleet deploys one agent: the Console, where manifests go, what bids it takes."""

    client: ConsoleClient
    manifests: Path
    bid_timeout_s: float
    max_price: Decimal | None
    poll_s: float

    def deploy(self, name: str, sdl: str) -> Entry:
        """The record of one deployment: its lease, or the error that stopped it."""
        try:
            leased = deploy(
                self.client,
                sdl,
                self.manifests,
                max_price=self.max_price,
                bid_timeout_s=self.bid_timeout_s,
                poll_s=self.poll_s,
            )
        except AkashError as exc:
            log.error("fleet_deploy_failed", member=name, error=str(exc))
            return {"error": str(exc)}
        log.info("fleet_member_deployed", member=name, dseq=leased.dseq)
        return {
            "dseq": leased.dseq,
            "provider": leased.provider,
            "price": str(leased.price),
            "denom": leased.denom,
            "state_url": leased.state_url,
        }


def deploy_fleet(
    client: ConsoleClient,
    folder: Path,
    *,
    agents: int,
    strategies: Sequence[str],
    options: SdlOptions,
    base_env: dict[str, str],
    generation: int = 0,
    bid_timeout_s: float = 180.0,
    max_price: Decimal | None = None,
    poll_s: float = 5.0,
    with_keys: bool = False,
) -> list[Entry]:
    """One Akash deployment per agent (its own SDL: strategy and generation in its env).

    With `with_keys` each agent gets a wallet made here (`folder/keys`, 0600), shipped in its
    SDL as secret settings (visible to the provider, like anything in a container); keeping the
    keystore here is what lets `supervise_remote` deploy the children it funds.

    Every outcome, deployed or not, is written to `folder/deployments.json` as it happens, so
    an interrupted run still knows what it leased.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lease = Lease(client, folder / "manifests", bid_timeout_s, max_price, poll_s)
    done: list[Entry] = []
    for i in range(agents):
        name, strategy = f"agent-{i:02d}", strategies[i % len(strategies)]
        entry: Entry = {"name": name, "strategy": strategy, "generation": generation}
        env = {**base_env, "FORAGER_STRATEGY": strategy, "FORAGER_GENERATION": str(generation)}
        if with_keys:
            env |= _give_wallet(entry, folder / "keys")
        entry |= _rent_terms(env)
        entry.update(lease.deploy(name, render_sdl(options, env)))
        done.append(entry)
        _record(folder / "deployments.json", done)
    return done


def supervise_remote(
    client: ConsoleClient,
    deployments: Path,
    options: SdlOptions,
    base_env: dict[str, str],
    *,
    bid_timeout_s: float = 180.0,
    max_price: Decimal | None = None,
    poll_s: float = 5.0,
) -> list[Entry]:
    """Deploy the children that deployed agents have funded (one pass; returns the new ones).

    A parent on Akash publishes its funded children in `/state` (`children`). Child n's key is
    derived from the parent's, and the operator holds the parent's keystore (`keystore` and
    `password_file` in its entry): the child's wallet is recreated here, encrypted with a fresh
    password, and shipped in the child's SDL as secret settings. No key leaves any agent.
    """
    entries: list[Entry] = json.loads(deployments.read_text())
    lease = Lease(client, deployments.parent / "manifests", bid_timeout_s, max_price, poll_s)
    known = {str(e["name"]) for e in entries}
    added: list[Entry] = []
    for parent in list(entries):
        state = _parent_state(parent)
        for name in _child_names(parent, state):
            if name in known:
                continue
            entry, env = _child(parent, state, name, deployments.parent / "keys")
            env = {**base_env, **env}
            entry |= _rent_terms(env)
            entry.update(lease.deploy(name, render_sdl(options, env)))
            entries.append(entry)
            added.append(entry)
            known.add(name)
            _record(deployments, entries)
    return added


def _parent_state(parent: Entry) -> dict[str, Any]:
    """A deployed parent's `/state`; empty for one we hold no keystore for or cannot reach."""
    if not parent.get("state_url") or not parent.get("keystore"):
        return {}
    base = str(parent["state_url"]).removesuffix("/state")
    try:
        state: dict[str, Any] = httpx.get(base + "/state", timeout=10).raise_for_status().json()
    except httpx.HTTPError as exc:
        log.warning("fleet_parent_unreachable", member=parent["name"], error=str(exc))
        return {}
    return state


def _child_names(parent: Entry, state: dict[str, Any]) -> list[str]:
    """The names the fleet gives the parent's funded children (`<parent>.c<n>`)."""
    children = state.get("children") or []
    return [f"{parent['name']}.{str(child).rsplit('.', 1)[-1]}" for child in children]


def _child(
    parent: Entry, state: dict[str, Any], name: str, keys: Path
) -> tuple[Entry, dict[str, str]]:
    """A child's entry and its settings: its parent's strategy, the next generation, and the
    wallet derived from the parent's key."""
    env = {
        "FORAGER_STRATEGY": str(state["strategy"]),
        "FORAGER_GENERATION": str(int(state["generation"]) + 1),
        "FORAGER_PARENT_ID": str(state["agent_id"]),
        **({"FORAGER_PERSONA": str(state["persona"])} if state.get("persona") else {}),
    }
    entry: Entry = {
        "name": name,
        "strategy": env["FORAGER_STRATEGY"],
        "generation": int(env["FORAGER_GENERATION"]),
        "parent": parent["name"],
    }
    env |= _give_wallet(entry, keys, _derived_account(parent, name))
    return entry, env


def _derived_account(parent: Entry, child_name: str) -> LocalAccount:
    """Child n's account, from the operator's copy of the parent's keystore."""
    n = int(child_name.rsplit(".c", 1)[-1])
    password = read_password(Path(parent["password_file"]))
    parent_account = load_keystore(Path(parent["keystore"]), password)
    child: LocalAccount = Account.from_key(derive_child_key(bytes(parent_account.key), n))
    return child


def _give_wallet(entry: Entry, keys: Path, account: LocalAccount | None = None) -> dict[str, str]:
    """Make the agent's wallet in `keys` (0600), note it in `entry`, return its secret env."""
    keystore, password_file = keys / f"{entry['name']}.json", keys / f"{entry['name']}.password"
    made = make_wallet(keystore, password_file, account)
    entry.update(address=made.address, keystore=str(keystore), password_file=str(password_file))
    return wallet_env(keystore, password_file)


def _rent_terms(env: dict[str, str]) -> Entry:
    terms = {key: env[name] for key, name in _RENT_ENV.items() if name in env}
    return {"rent": terms} if terms else {}


def _record(path: Path, entries: list[Entry]) -> None:
    path.write_text(json.dumps(entries, indent=2))
