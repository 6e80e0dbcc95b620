"""SDL validation: the official JSON schema, then the semantic rules the Go parser enforces.

Documents and the schema are read as YAML 1.2 (the schema has an unquoted `off`, which YAML 1.1
would turn into `False`). Every problem names the path it is at, e.g.
`services.web.expose[0].port: 99999 is greater than the maximum of 65535`.

The semantic rules are those of Akash's parser (chain-sdk `go/sdl`, with the deployment-group
and manifest checks it runs): references between services, profiles, placements and
endpoints; quantities it can read (CPU, sizes, GPU units, prices); storage classes, mounts and
TEE types; the chain's limits per instance and per placement group; one denomination; names of
services, variables and hosts; and at least one service exposed to global. Limits apply only
to what the deployment uses, as on chain. The rules for resources and prices live in
`akash.resources`.
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
from akash.resources import (
    Placed,
    amount_problems,
    group_total_problems,
    mapping,
    profile_of,
    resource_problems,
    resources_of,
    sequence,
    text_of,
    volumes_of,
    whole,
)

SCHEMA_ENV = "FORAGER_AKASH_SCHEMA"
_SCHEMA_NAME = "sdl-input.schema.yaml"
_SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_HOSTNAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


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
    """The rules Akash's Go parser applies beyond the schema: references, quantities, limits."""
    services = mapping(doc.get("services"))
    profiles = mapping(doc.get("profiles"))
    placed = _placed(doc.get("deployment"))
    deployed = {service for service, _, _ in placed}
    problems = _endpoint_problems(services, set(mapping(doc.get("endpoints"))), deployed)
    problems += _ip_port_problems(placed, services)
    problems += _deployment_problems(placed, services, profiles, str(doc.get("version")))
    if isinstance(doc.get("deployment"), dict) and not placed:
        problems.append(
            "deployment: places no service; expected `<service>: {<placement>: {profile, count}}`"
        )
    problems += _profile_problems(placed, profiles)
    for name in sorted(deployed & set(services)):
        problems += _service_problems(name, mapping(services[name]))
    problems += _host_problems(placed, services) + _global_problems(placed, services)
    problems += group_total_problems(placed, mapping(profiles.get("compute")))
    problems += _tee_problems(placed, services, mapping(profiles.get("compute")))
    problems += _denomination_problems(placed, mapping(profiles.get("placement")))
    return list(dict.fromkeys(problems))


def _placed(deployment: Any) -> list[Placed]:
    """(service, placement group, {profile, count}) for every deployment entry, sorted by name."""
    return [
        (str(service), str(group), mapping(entry))
        for service, groups in sorted(mapping(deployment).items(), key=lambda kv: str(kv[0]))
        for group, entry in sorted(mapping(groups).items(), key=lambda kv: str(kv[0]))
    ]


def _endpoint_problems(
    services: dict[str, Any], endpoints: set[str], deployed: set[str]
) -> list[str]:
    """Every IP a service exposes to is declared, and a deployed service uses each endpoint."""
    problems, used = [], set()
    for name, service in services.items():
        for i, expose in enumerate(sequence(mapping(service).get("expose"))):
            for j, target in enumerate(sequence(mapping(expose).get("to"))):
                ip = mapping(target).get("ip")
                if not ip:
                    continue
                if name in deployed:
                    used.add(ip)
                if ip not in endpoints:
                    where = f"services.{name}.expose[{i}].to[{j}].ip"
                    problems.append(f"{where}: endpoint {ip!r} is not declared")
    problems += [
        f"endpoints.{e}: declared but no service exposes to it" for e in sorted(endpoints - used)
    ]
    return problems


def _ip_port_problems(placed: list[Placed], services: dict[str, Any]) -> list[str]:
    """An IP endpoint carries each external port and protocol for one service only."""
    problems: list[str] = []
    owners: dict[tuple[str, str, str], str] = {}
    for service, _, _ in placed:
        for i, item in enumerate(sequence(mapping(services.get(service)).get("expose"))):
            expose = mapping(item)
            for j, target in enumerate(sequence(expose.get("to"))):
                ip = mapping(target).get("ip")
                if not ip:
                    continue
                key = (str(ip), text_of(expose.get("as", 0)), text_of(expose.get("proto", "")))
                if key in owners:
                    port = (
                        f"{expose.get('as') or expose.get('port')}/{expose.get('proto') or 'TCP'}"
                    )
                    problems.append(
                        f"services.{service}.expose[{i}].to[{j}].ip: endpoint {ip!r} already "
                        f"carries port {port} for service {owners[key]!r}; expected each port and "
                        "protocol once per IP endpoint (a service in two placements counts twice)"
                    )
                owners.setdefault(key, service)
    return problems


def _deployment_problems(
    placed: list[Placed], services: dict[str, Any], profiles: dict[str, Any], version: str
) -> list[str]:
    """Services, placements, prices and compute profiles referenced all exist."""
    problems = []
    for service_name, group, spec in placed:
        if service_name not in services:
            problems.append(
                f"deployment.{service_name}: service {service_name!r} is not defined under services"
            )
        problems += _group_problems(service_name, group, spec, services, profiles, version)
    return problems


def _group_problems(
    service_name: str,
    group: str,
    spec: dict[str, Any],
    services: dict[str, Any],
    profiles: dict[str, Any],
    version: str,
) -> list[str]:
    """One placement group of a service: its placement, its price and its compute profile."""
    where, profile = f"deployment.{service_name}.{group}", profile_of(spec)
    compute, placement = mapping(profiles.get("compute")), mapping(profiles.get("placement"))
    problems = []
    if group not in placement:
        problems.append(f"{where}: placement {group!r} is not in profiles.placement")
    elif profile not in mapping(mapping(placement.get(group)).get("pricing")):
        problems.append(f"{where}: no price for profile {spec.get('profile')!r} there")
    if profile not in compute:
        problems.append(f"{where}.profile: {spec.get('profile')!r} is not in profiles.compute")
    elif service_name in services:
        service, resources = mapping(services[service_name]), resources_of(compute, spec)
        problems += _storage_problems(service_name, service, resources, version)
    return problems


def _storage_problems(
    service: str, spec: dict[str, Any], resources: dict[str, Any], version: str
) -> list[str]:
    volumes = {name: volume for _, name, volume in volumes_of("", resources)}
    mounts = mapping(mapping(spec.get("params")).get("storage"))
    problems = _mount_problems(service, mounts, volumes, version)
    for volume, spec_volume in volumes.items():
        persistent = str(mapping(spec_volume.get("attributes")).get("persistent")).lower()
        if persistent == "true" and volume not in mounts:
            problems.append(
                f"services.{service}.params.storage: persistent volume {volume!r} is not mounted"
            )
    return problems


def _mount_problems(
    service: str, mounts: dict[str, Any], volumes: dict[str, Any], version: str
) -> list[str]:
    """Each mount names a volume of the profile and a path of its own; SDL 2.1 ram is writable."""
    problems: list[str] = []
    taken: dict[str, str] = {}
    for volume, mount in mounts.items():
        where, path = f"services.{service}.params.storage.{volume}", mapping(mount).get("mount")
        if volume not in volumes:
            problems.append(f"{where}: no such volume in its compute profile")
            continue
        if not path:
            problems.append(f"{where}.mount: missing")
        elif str(path) in taken:
            problems.append(
                f"{where}.mount: {path!r} is already where volume {taken[str(path)]!r} is "
                "mounted; expected a mount point of its own"
            )
        taken.setdefault(str(path), volume)
        ram = text_of(mapping(volumes[volume].get("attributes")).get("class")) == "ram"
        if version == "2.1" and ram and mapping(mount).get("readOnly") is True:
            problems.append(f"{where}.readOnly: a ram volume cannot be read-only; expected false")
    return problems


def _profile_problems(placed: list[Placed], profiles: dict[str, Any]) -> list[str]:
    """Every compute and placement profile reads as Akash reads it; limits where deployed."""
    used = {profile_of(entry) for _, _, entry in placed}
    problems = []
    for name, spec in mapping(profiles.get("compute")).items():
        resources = mapping(mapping(spec).get("resources"))
        problems += resource_problems(f"profiles.compute.{name}.resources", resources, name in used)
    for name, spec in mapping(profiles.get("placement")).items():
        priced = {profile_of(entry) for _, group, entry in placed if group == name}
        problems += _placement_problems(str(name), mapping(spec), priced)
    return problems


def _placement_problems(name: str, placement: dict[str, Any], priced: set[str]) -> list[str]:
    """Attributes are single values; prices are positive, exact and under the unit maximum."""
    where = f"profiles.placement.{name}"
    problems = [
        f"{where}.attributes.{key}: expected one value (a string), not a list or mapping"
        for key, value in mapping(placement.get("attributes")).items()
        if isinstance(value, dict | list)
    ]
    for profile, price in mapping(placement.get("pricing")).items():
        amount = mapping(price).get("amount")
        problems += amount_problems(f"{where}.pricing.{profile}.amount", amount, profile in priced)
    return problems


def _service_problems(name: str, service: dict[str, Any]) -> list[str]:
    """A deployed service: its name, its variables' names and its registry credentials."""
    problems = []
    if not _SERVICE_NAME.fullmatch(name):
        problems.append(
            f"services.{name}: {name!r} is not a valid service name; expected lowercase letters, "
            "digits and '-', starting with a letter and not ending with '-'"
        )
    for i, item in enumerate(sequence(service.get("env"))):
        variable = str(item).split("=", 1)[0]
        if not _ENV_NAME.fullmatch(variable) or variable == "." or variable.startswith(".."):
            problems.append(
                f"services.{name}.env[{i}]: {variable!r} is not a variable name; expected "
                "NAME=value, NAME of letters, digits, '_', '-' and '.', not starting with a digit"
            )
    credentials = mapping(service.get("credentials"))
    for key in ("host", "username", "password"):
        if isinstance(credentials.get(key), str) and not credentials[key].strip():
            problems.append(f"services.{name}.credentials.{key}: blank; expected a value")
    return problems


def _host_problems(placed: list[Placed], services: dict[str, Any]) -> list[str]:
    """Accepted hostnames are DNS names, each accepted once in the deployment."""
    problems: list[str] = []
    first: dict[str, str] = {}
    for service, _, _ in sorted(placed, key=lambda p: (p[1], p[0])):
        for i, expose in enumerate(sequence(mapping(services.get(service)).get("expose"))):
            copies = max(1, len(sequence(mapping(expose).get("to"))))
            for k, host in enumerate(sequence(mapping(expose).get("accept"))):
                where = f"services.{service}.expose[{i}].accept[{k}]"
                if not (isinstance(host, str) and len(host) <= 253 and _HOSTNAME.fullmatch(host)):
                    problems.append(
                        f"{where}: {host!r} is not a hostname; expected lowercase DNS labels "
                        "(a-z, 0-9, '-') joined by '.', 253 characters at most"
                    )
                elif host in first or copies > 1:
                    problems.append(
                        f"{where}: {host!r} is accepted more than once (also "
                        f"{first.get(host, where)}); expected once per deployment (each `to` "
                        "entry and each placement group counts)"
                    )
                first.setdefault(host, where)
    return problems


def _global_problems(placed: list[Placed], services: dict[str, Any]) -> list[str]:
    """At least one deployed service is reachable from outside the provider."""
    exposes = [
        mapping(expose)
        for service in {service for service, _, _ in placed}
        for expose in sequence(mapping(services.get(service)).get("expose"))
    ]
    targets = [mapping(target) for expose in exposes for target in sequence(expose.get("to"))]
    if not placed or any(target.get("global") is True for target in targets):
        return []
    return ["services: no deployed service is exposed to global; expected a `to: [{global: true}]`"]


def _tee_problems(
    placed: list[Placed], services: dict[str, Any], compute: dict[str, Any]
) -> list[str]:
    """`tee: cpu-gpu` needs a GPU, and a placement group holds one TEE type."""
    problems: list[str] = []
    first: dict[str, tuple[str, Any]] = {}
    for service, group, entry in placed:
        tee = mapping(mapping(services.get(service)).get("params")).get("tee")
        if not tee:
            continue
        where = f"services.{service}.params.tee"
        gpus = whole(mapping(resources_of(compute, entry).get("gpu")).get("units", 0)) or 0
        if tee == "cpu-gpu" and not gpus:
            problems.append(
                f"{where}: 'cpu-gpu' needs a GPU, but compute profile {profile_of(entry)!r} has "
                "none; expected gpu units above 0, or tee: cpu"
            )
        other, other_tee = first.setdefault(group, (service, tee))
        if other_tee != tee:
            problems.append(
                f"{where}: {tee!r} conflicts with {other_tee!r} of service {other!r} in placement "
                f"{group!r}; expected one TEE type per placement group"
            )
    return problems


def _denomination_problems(placed: list[Placed], placements: dict[str, Any]) -> list[str]:
    """Every price the deployment uses is in one denomination."""
    problems, first = [], None
    for _, group, entry in sorted(placed, key=lambda p: (p[1], p[0])):
        where = f"profiles.placement.{group}.pricing.{profile_of(entry)}.denom"
        pricing = mapping(mapping(placements.get(group)).get("pricing"))
        denom = mapping(pricing.get(profile_of(entry))).get("denom")
        if denom is None:
            continue
        first = first or (denom, where)
        if denom != first[0]:
            problems.append(
                f"{where}: {denom!r}, but {first[1]} is {first[0]!r}; expected one "
                "denomination for the whole deployment"
            )
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
