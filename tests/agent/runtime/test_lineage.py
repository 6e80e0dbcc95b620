"""A child's inheritance: its persona (mutated by a seeded chance) and its derived wallet."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account

from agent.core.prompt import PERSONAS
from agent.runtime.lineage import Nursery, child_persona
from wallets.keystore import derive_child_key, load_keystore


def test_persona_is_inherited_or_mutated_reproducibly():
    assert child_persona("cautious", seed=3, n=1, chance=0.0) == "cautious"
    mutated = {child_persona("cautious", seed=3, n=n, chance=1.0) for n in range(1, 20)}
    assert "cautious" not in mutated and mutated <= set(PERSONAS) and len(mutated) > 1
    assert child_persona("frugal", 5, 2, 1.0) == child_persona("frugal", 5, 2, 1.0)
    assert child_persona(None, 5, 2, 1.0) in PERSONAS


def test_a_childs_wallet_is_derived_from_the_parents_key(tmp_path: Path):
    parent = Account.create()
    nursery = Nursery(tmp_path / "agent-00", parent)
    name, folder, address = nursery.new_child()
    assert (name, folder) == ("agent-00.c1", tmp_path / "agent-00.c1")
    opened = load_keystore(folder / "keystore.json", (folder / "keystore.password").read_text())
    assert opened.address == address == Account.from_key(derive_child_key(parent.key, 1)).address
    assert (folder / "keystore.json").stat().st_mode & 0o777 == 0o600
    other = Account.create()
    assert Account.from_key(derive_child_key(other.key, 1)).address != address
