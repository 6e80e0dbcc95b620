"""Replication: a parent makes a child's wallet and asks its supervisor to launch it.

The child's data dir sits beside the parent's (`<parent>.c<n>`), holding a fresh encrypted
keystore and its password file (both 0600) exactly where `forager run --data-dir` looks for
them. The launch request (`<parent>/spawn/<child>.json`) says who the child is; a fleet
supervisor launches it, and any operator can (`forager run --data-dir <child dir>` plus the
request's generation, strategy and parent id).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agent.core.prompt import PERSONAS
from wallets.keystore import derive_child_key, make_wallet, write_private_file


@dataclass(frozen=True)
class LaunchRequest:
    name: str
    data_dir: str
    address: str
    parent_id: str
    parent_address: str
    generation: int
    strategy: str
    seed: int
    born_tick: int
    stable: int = 0
    native: int = 0
    tx_hashes: tuple[str, ...] = ()
    persona: str | None = None
    status: str = "pending"  # pending (written before any money moves), funded, failed


class Nursery:
    """Children of one parent: their wallets and launch requests.

    Child n's key is derived from the parent's (`derive_child_key`), so the parent knows whom
    it funds and an operator holding the parent's keystore can recreate the child's wallet
    anywhere (a new Akash deployment) without any key leaving the parent.
    """

    def __init__(self, parent_dir: Path, parent: LocalAccount | None = None) -> None:
        self.parent_dir = parent_dir
        self.parent = parent
        self.spawn_dir = parent_dir / "spawn"

    def requests(self) -> list[LaunchRequest]:
        if not self.spawn_dir.is_dir():
            return []
        return [read_request(path) for path in sorted(self.spawn_dir.glob("*.json"))]

    def funded(self) -> list[LaunchRequest]:
        """The children ready to launch."""
        return [r for r in self.requests() if r.status == "funded"]

    def new_child(self) -> tuple[str, Path, str]:
        """A new child's (name, data dir, address): its keystore is made, nothing is paid."""
        n = len(self.requests()) + 1
        while (self._child_dir(n) / "keystore.json").exists():  # left by a failed attempt
            n += 1
        child_dir = self._child_dir(n)
        derived = None
        if self.parent is not None:
            derived = Account.from_key(derive_child_key(bytes(self.parent.key), n))
        account = make_wallet(child_dir / "keystore.json", child_dir / "keystore.password", derived)
        return child_dir.name, child_dir, account.address

    def _child_dir(self, n: int) -> Path:
        return self.parent_dir.parent / f"{self.parent_dir.name}.c{n}"

    def request_launch(self, request: LaunchRequest) -> Path:
        path = self.spawn_dir / f"{request.name}.json"
        write_private_file(path, json.dumps(asdict(request), indent=2))
        return path


def child_persona(persona: str | None, seed: int, n: int, chance: float) -> str | None:
    """The child's temperament: the parent's, or (with `chance`, seeded) another one."""
    rng = random.Random(f"persona-{seed}-{n}")  # noqa: S311 -- a reproducible mutation
    if chance <= 0 or rng.random() >= chance:
        return persona
    others = [name for name in sorted(PERSONAS) if name != persona]
    return rng.choice(others)


def read_request(path: Path) -> LaunchRequest:
    data: dict[str, Any] = json.loads(path.read_text())
    data["tx_hashes"] = tuple(data.get("tx_hashes", ()))
    return LaunchRequest(**data)
