"""One command from an SDL to a running lease, through the Console API.

create deployment → keep the manifest (the API shows it once) → wait for bids → pick the
cheapest acceptable one → create the lease (which sends the manifest) → report the URIs.
With no acceptable bid in time the deployment is closed, so its deposit is not left in escrow.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from akash.console import ConsoleClient, DeploymentStatus, pick_bid
from akash.errors import NoBids


@dataclass(frozen=True)
class Deployed:
    dseq: str
    provider: str
    price: Decimal
    denom: str
    status: DeploymentStatus
    manifest_file: Path

    @property
    def state_url(self) -> str | None:
        """Where the agent's `/state` answers, once the provider has given it a hostname."""
        for lease in self.status.leases:
            for uri in lease.uris:
                return f"http://{uri}/state"
        return None


def save_manifest(folder: Path, dseq: str, manifest: str, tx_hash: str) -> Path:
    """Keep what the API returns only once (mode 0600: it describes the deployment)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"deployment-{dseq}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"dseq": dseq, "manifest": manifest, "tx_hash": tx_hash}, handle)
    return path


def deploy(
    client: ConsoleClient,
    sdl: str,
    folder: Path,
    *,
    gpu: str | None = None,
    max_price: Decimal | None = None,
    bid_timeout_s: float = 180.0,
    poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Deployed:
    created = client.create_deployment(sdl)
    manifest_file = save_manifest(folder, created.dseq, created.manifest, created.tx_hash)
    deadline = time.monotonic() + bid_timeout_s
    while (bid := pick_bid(client.bids(created.dseq), gpu, max_price)) is None:
        if time.monotonic() >= deadline:
            client.close(created.dseq)
            raise _no_bids(created.dseq, gpu, max_price, bid_timeout_s)
        sleep(poll_s)
    status = client.create_lease(created.manifest, bid)
    return Deployed(created.dseq, bid.provider, bid.amount, bid.denom, status, manifest_file)


def _no_bids(dseq: str, gpu: str | None, max_price: Decimal | None, waited_s: float) -> NoBids:
    wanted = f" offering {gpu}" if gpu else ""
    capped = f" at or under {max_price}" if max_price is not None else ""
    return NoBids(
        f"no open bid{wanted}{capped} for deployment {dseq} within "
        f"{waited_s:.0f} s; the deployment was closed"
    )
