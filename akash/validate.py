"""SDL validation: the official JSON schema, then the semantic rules the Go parser enforces.

Documents and the schema are read as YAML 1.2 (the schema has an unquoted `off`, which YAML 1.1
would turn into `False`). Every problem names the path it is at, e.g.
`services.web.expose[0].port: 99999 is greater than the maximum of 65535`.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from akash.errors import SchemaMissing, SdlError

SCHEMA_ENV = "FORAGER_AKASH_SCHEMA"
_SCHEMA_NAME = "sdl-input.schema.yaml"
_GPU_RAM = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei)$")


def load_yaml(text: str, source: str = "<sdl>") -> Any:
    """Parse YAML 1.2 (so `off`, `yes`, `no` stay strings)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    try:
        return yaml.load(io.StringIO(text))
    except YAMLError as exc:
        raise SdlError(f"{source} is not valid YAML: {exc}") from exc


def find_schema(start: Path | None = None) -> Path:
    """The SDL schema: `$FORAGER_AKASH_SCHEMA`, else `shared/akash/` beside a parent folder."""
    named = os.environ.get(SCHEMA_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise SchemaMissing(f"{SCHEMA_ENV}={named} is not a file")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "akash" / _SCHEMA_NAME
        if candidate.is_file():
            return candidate
    raise SchemaMissing(
        f"the Akash SDL schema ({_SCHEMA_NAME}) was not found: set {SCHEMA_ENV} to its path"
    )


def _path(parts: Iterator[Any] | Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def schema_problems(doc: Any, schema: dict[str, Any]) -> list[str]:
    validator = Draft7Validator(schema)
    errors = [_specific(e) for e in validator.iter_errors(doc)]
    errors.sort(key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errors]


def _specific(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, the deepest reason in the branch that got furthest."""
    while error.context:
        candidates = [e for e in error.context if e.validator != "type"] or list(error.context)
        error = max(candidates, key=lambda e: len(e.absolute_path))
    return error


def semantic_problems(doc: dict[str, Any]) -> list[str]:
    """The cross-reference rules the schema cannot express."""
    services = doc.get("services") or {}
    profiles = doc.get("profiles") or {}
    problems = _endpoint_problems(services, set((doc.get("endpoints") or {}).keys()))
    problems += _deployment_problems(doc.get("deployment") or {}, services, profiles)
    for name, spec in (profiles.get("compute") or {}).items():
        problems += _gpu_problems(name, (spec or {}).get("resources") or {})
    return problems


def _endpoint_problems(services: dict[str, Any], endpoints: set[str]) -> list[str]:
    """Every IP a service exposes to is declared, and every declared endpoint is used."""
    problems, used = [], set()
    for name, service in services.items():
        for i, expose in enumerate(service.get("expose") or []):
            for j, target in enumerate(expose.get("to") or []):
                ip = target.get("ip")
                if not ip:
                    continue
                used.add(ip)
                if ip not in endpoints:
                    where = f"services.{name}.expose[{i}].to[{j}].ip"
                    problems.append(f"{where}: endpoint {ip!r} is not declared")
    problems += [
        f"endpoints.{e}: declared but no service exposes to it" for e in sorted(endpoints - used)
    ]
    return problems


def _deployment_problems(
    deployment: dict[str, Any], services: dict[str, Any], profiles: dict[str, Any]
) -> list[str]:
    """Services, placements, prices and compute profiles referenced all exist."""
    problems = []
    for service_name, groups in deployment.items():
        if service_name not in services:
            problems.append(
                f"deployment.{service_name}: service {service_name!r} is not defined under services"
            )
        for group, spec in (groups or {}).items():
            problems += _group_problems(service_name, group, spec, services, profiles)
    return problems


def _group_problems(
    service_name: str,
    group: str,
    spec: dict[str, Any],
    services: dict[str, Any],
    profiles: dict[str, Any],
) -> list[str]:
    """One placement group of a service: its placement, its price and its compute profile."""
    where, profile = f"deployment.{service_name}.{group}", spec.get("profile")
    compute, placement = profiles.get("compute") or {}, profiles.get("placement") or {}
    problems = []
    if group not in placement:
        problems.append(f"{where}: placement {group!r} is not in profiles.placement")
    elif profile not in ((placement.get(group) or {}).get("pricing") or {}):
        problems.append(f"{where}: no price for profile {profile!r} there")
    if profile not in compute:
        problems.append(f"{where}.profile: {profile!r} is not in profiles.compute")
    elif service_name in services:
        problems += _storage_problems(service_name, services[service_name], compute[profile])
    return problems


def _volumes(resources: dict[str, Any]) -> list[dict[str, Any]]:
    storage = resources.get("storage")
    if isinstance(storage, dict):
        return [storage]
    return list(storage or [])


def _storage_problems(service: str, spec: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    problems = []
    volumes = {v.get("name", "default"): v for v in _volumes(profile.get("resources") or {})}
    mounts = ((spec.get("params") or {}).get("storage")) or {}
    for volume, mount in mounts.items():
        if volume not in volumes:
            problems.append(
                f"services.{service}.params.storage.{volume}: no such volume in its compute profile"
            )
        elif not (mount or {}).get("mount"):
            problems.append(f"services.{service}.params.storage.{volume}.mount: missing")
    for volume, spec_volume in volumes.items():
        persistent = str((spec_volume.get("attributes") or {}).get("persistent")).lower()
        if persistent == "true" and volume not in mounts:
            problems.append(
                f"services.{service}.params.storage: persistent volume {volume!r} is not mounted"
            )
    return problems


def _gpu_problems(profile: str, resources: dict[str, Any]) -> list[str]:
    problems = []
    vendors = ((resources.get("gpu") or {}).get("attributes") or {}).get("vendor") or {}
    for vendor, models in vendors.items():
        for i, model in enumerate(models or []):
            ram = (model or {}).get("ram")
            if ram is not None and not _GPU_RAM.match(str(ram)):
                where = f"profiles.compute.{profile}.resources.gpu.attributes.vendor.{vendor}[{i}]"
                problems.append(f"{where}.ram: {ram!r} must use Gi-style units (e.g. 80Gi)")
    return problems


def validate_document(doc: Any, schema: dict[str, Any]) -> list[str]:
    """Every problem with `doc`, schema first; an empty list means valid."""
    problems = schema_problems(doc, schema)
    if isinstance(doc, dict):
        problems += semantic_problems(doc)
    return problems


def load_schema(path: Path | None = None) -> dict[str, Any]:
    schema_path = path or find_schema()
    schema = load_yaml(schema_path.read_text(), str(schema_path))
    if not isinstance(schema, dict):
        raise SchemaMissing(f"{schema_path} is not a JSON schema document")
    return schema


def validate_text(text: str, schema: dict[str, Any], source: str = "<sdl>") -> list[str]:
    return validate_document(load_yaml(text, source), schema)
