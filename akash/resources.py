"""The rules for what a deployment's resources and prices may be.

Quantities are read as Akash's parser reads them: CPU units as CPUs (`0.5`) or whole
thousandths (`500m`), sizes as a number with an optional decimal or binary unit (`512Mi`,
`1G`), GPU units as a whole number, prices as decimals of at most 18 places. The chain's limits
apply per instance (CPU, memory, volume size, GPUs, price) and per placement group, where each
service placed there counts its units times its count; like the chain, they apply only to
profiles the deployment uses. Storage classes and persistence, and GPU models (each becomes a
provider attribute), are checked here too.

The readers of loosely typed YAML values (`mapping`, `sequence`, `text_of`) and the look-ups of
a deployment entry's profile, resources and volumes live here as well: `akash.validate`, which
checks everything else, imports them from here, never the reverse.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

_MILLI_CPU = re.compile(r"([0-9]+)m")
_CPUS = re.compile(r"[0-9]+(\.[0-9]+)?")
_DIGITS = re.compile(r"[0-9]+")
_SIZE = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(k|Ki|[MGTPE]i?)?")
_BYTE_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_BYTE_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_BOOLEANS = ("true", "false", "on", "off", "yes", "no")
_CLASSES = ("beta1", "beta2", "beta3", "default", "ram")
_GPU_RAM = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei)$")
_ATTRIBUTE_KEY = re.compile(r"[a-zA-Z][\w/.\-]{1,126}[\w*]?", re.ASCII)
_MAX_GPUS = 24
_MAX_PRICE = Decimal(10_000_000)
_MAX_DECIMALS = 18
Placed = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class _Limit:
    """An inclusive range the chain allows, and how a message says it."""

    low: int
    high: int
    text: str

    def __contains__(self, value: int) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return self.text


# Per instance of a service; a placement group may ask for 50 instances' worth in all.
_CPU_LIMIT = _Limit(10, 384_000, "between 10m and 384 CPUs per instance")
_MEMORY = _Limit(2**20, 2 * 2**40, "between 1Mi and 2Ti per instance")
_VOLUME = _Limit(5 * 2**20, 32 * 2**40, "between 5Mi and 32Ti per volume")
_GROUP_LIMITS = (
    ("CPUs", 1000, _Limit(0, 50 * 384_000, "at most 19200 CPUs per placement group")),
    ("GPUs", 1, _Limit(0, 50 * _MAX_GPUS, "at most 1200 GPUs per placement group")),
    ("Gi of memory", 2**30, _Limit(0, 50 * 2 * 2**40, "at most 100Ti per placement group")),
)


def mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text_of(value: Any) -> str:
    """A scalar as Akash reads it into a string: YAML booleans become `true` and `false`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def profile_of(entry: dict[str, Any]) -> str:
    profile = entry.get("profile")
    return profile if isinstance(profile, str) else ""


def resources_of(compute: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    return mapping(mapping(compute.get(profile_of(entry))).get("resources"))


def volumes_of(where: str, resources: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, name, volume) for each volume; a lone mapping, or an unnamed volume, is `default`."""
    storage = resources.get("storage")
    if isinstance(storage, dict):
        return [(f"{where}.storage", "default", storage)]
    return [
        (f"{where}.storage[{i}]", str(volume.get("name") or "default"), volume)
        for i, volume in enumerate(sequence(storage))
        if isinstance(volume, dict)
    ]


def resource_problems(where: str, resources: dict[str, Any], deployed: bool) -> list[str]:
    problems = _cpu_problems(where, mapping(resources.get("cpu")), deployed)
    memory = mapping(resources.get("memory"))
    if "size" in memory:
        problems += _size_problems(f"{where}.memory.size", memory["size"], deployed, _MEMORY)
    problems += _volume_problems(where, resources, deployed)
    return problems + _gpu_problems(f"{where}.gpu", mapping(resources.get("gpu")), deployed)


def _milli_cpu(units: Any) -> int | None:
    """CPU units in thousandths of a CPU: a number of CPUs, or whole thousandths as `500m`."""
    if isinstance(units, bool) or not isinstance(units, int | float | str):
        return None
    if not isinstance(units, str):
        return int(units * 1000) if math.isfinite(units) and units >= 0 else None
    if milli := _MILLI_CPU.fullmatch(units):
        return int(milli.group(1)) if int(milli.group(1)) < 2**32 else None
    return int(Decimal(units) * 1000) if _CPUS.fullmatch(units) else None


def _cpu_problems(where: str, cpu: dict[str, Any], deployed: bool) -> list[str]:
    attributes = mapping(cpu.get("attributes"))
    problems = [
        f"{where}.cpu.attributes.{key}: not a CPU attribute; expected only arch"
        for key in attributes
        if key != "arch"
    ]
    if isinstance(attributes.get("arch"), dict | list):
        problems.append(f"{where}.cpu.attributes.arch: expected one value, e.g. amd64")
    if "units" not in cpu:
        return problems
    units, milli = cpu["units"], _milli_cpu(cpu["units"])
    if milli is None:
        problems.append(
            f"{where}.cpu.units: {units!r} is not a CPU quantity; expected CPUs (0.5, 2) "
            "or whole thousandths (500m)"
        )
    elif deployed and milli not in _CPU_LIMIT:
        problems.append(f"{where}.cpu.units: {units!r} is {milli}m; expected {_CPU_LIMIT}")
    return problems


def _bytes(size: Any) -> int | None:
    """A memory or storage size in bytes: a number, with an optional unit (k, Ki, M, Mi, ...)."""
    if isinstance(size, bool) or not isinstance(size, int | float | str):
        return None
    match = _SIZE.fullmatch(str(size))
    if match is None:
        return None
    value = float(match.group(1)) * _BYTE_UNITS[match.group(2) or ""]
    return int(value) if math.isfinite(value) and value >= 0 else None


def _size_problems(where: str, size: Any, deployed: bool, limit: _Limit) -> list[str]:
    value = _bytes(size)
    if value is None:
        return [
            f"{where}: {size!r} is not a size; expected a number with an optional unit "
            "(k, Ki, M, Mi, G, Gi, T, Ti, P, Pi, E, Ei), e.g. 512Mi"
        ]
    if deployed and value not in limit:
        return [f"{where}: {size!r} is {value} bytes; expected {limit}"]
    return []


def _volume_problems(where: str, resources: dict[str, Any], deployed: bool) -> list[str]:
    """Volume names are unique, sizes parse, and class and persistence agree."""
    problems: list[str] = []
    first: dict[str, str] = {}
    if deployed and resources.get("storage") == []:
        problems.append(f"{where}.storage: no volume; expected at least one, e.g. size: 1Gi")
    for path, name, volume in volumes_of(where, resources):
        if name in first:
            problems.append(
                f"{path}: volume name {name!r} is already used by {first[name]}; expected "
                "unique names (an unnamed volume is called 'default')"
            )
        first.setdefault(name, path)
        if "size" in volume:
            problems += _size_problems(f"{path}.size", volume["size"], deployed, _VOLUME)
        problems += _storage_class_problems(f"{path}.attributes", volume.get("attributes"))
    return problems


def _storage_class_problems(where: str, attributes: Any) -> list[str]:
    """A known class; `persistent` a boolean (true/false, on/off, yes/no); ram not persistent."""
    if not isinstance(attributes, dict):
        return []
    persistent = text_of(attributes.get("persistent", False))
    kind = text_of(attributes.get("class", ""))
    problems = []
    if persistent not in _BOOLEANS:
        problems.append(
            f"{where}.persistent: {persistent!r} is not a boolean; expected true or false"
        )
    if kind == "ram" and persistent != "false":
        problems.append(
            f"{where}.persistent: a ram volume must be persistent: false, not {persistent!r}"
        )
    elif (
        "class" in attributes and kind not in _CLASSES and not (kind == "" and persistent == "true")
    ):
        problems.append(
            f"{where}.class: {kind!r} is not a storage class; expected {', '.join(_CLASSES)}"
        )
    return problems


def whole(value: Any) -> int | None:
    """A whole number of GPUs, written as a number or a string of digits."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str):
        return int(value) if _DIGITS.fullmatch(value) and int(value) < 2**64 else None
    return value if value >= 0 else None


def _gpu_problems(where: str, gpu: dict[str, Any], deployed: bool) -> list[str]:
    problems, units = [], whole(gpu.get("units", 0))
    if units is None:
        problems.append(f"{where}.units: {gpu['units']!r}; expected a whole number of GPUs")
    elif deployed and units > _MAX_GPUS:
        problems.append(f"{where}.units: {units} GPUs; expected at most {_MAX_GPUS} per instance")
    attributes = gpu.get("attributes")
    if isinstance(attributes, dict) and "vendor" not in attributes:
        problems.append(
            f"{where}.attributes.vendor: missing; expected the vendor and its models, "
            "e.g. vendor: {nvidia: [{model: h100}]}"
        )
    for vendor, models in mapping(mapping(attributes).get("vendor")).items():
        problems += _gpu_model_problems(f"{where}.attributes.vendor.{vendor}", vendor, models)
    return problems


def _gpu_model_problems(where: str, vendor: str, models: Any) -> list[str]:
    """Each model becomes a provider attribute: valid characters, 128 at most, none twice."""
    problems: list[str] = []
    first: dict[str, str] = {}
    for i, item in enumerate(sequence(models)):
        model, at = mapping(item), f"{where}[{i}]"
        ram = model.get("ram")
        if ram is not None and not _GPU_RAM.match(str(ram)):
            problems.append(f"{at}.ram: {ram!r} must use Gi-style units (e.g. 80Gi)")
            continue
        key = _gpu_attribute(vendor, model)
        if not _ATTRIBUTE_KEY.fullmatch(key):
            problems.append(
                f"{at}.model: {model.get('model')!r} gives the provider attribute {key!r}; "
                "expected letters, digits, '_', '-', '.' and '/', 128 characters in all at most"
            )
        elif key in first:
            problems.append(f"{at}: the same GPU as {first[key]}; expected each model once")
        first.setdefault(key, at)
    return problems


def _gpu_attribute(vendor: str, model: dict[str, Any]) -> str:
    key = f"vendor/{vendor}/model/{model.get('model') or ''}"
    if model.get("ram") is not None:
        key += f"/ram/{(_bytes(str(model['ram'])) or 0) // 2**30}Gi"
    if model.get("interface") is not None:
        key += f"/interface/{model['interface']}"
    return key


def amount_problems(where: str, amount: Any, deployed: bool) -> list[str]:
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        return []
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return []
    if value == 0:
        return [f"{where}: {amount!r} is zero; expected a price above 0"]
    if isinstance(amount, str) and len(amount.partition(".")[2]) > _MAX_DECIMALS:
        return [f"{where}: {amount!r}; expected at most {_MAX_DECIMALS} decimal places"]
    if deployed and value > _MAX_PRICE:
        return [f"{where}: {amount!r}; expected at most {_MAX_PRICE} per instance and block"]
    return []


def group_total_problems(placed: list[Placed], compute: dict[str, Any]) -> list[str]:
    """What a placement group asks for in all (units times count) is within the chain's limits."""
    totals: dict[str, list[int]] = {}
    for _, group, entry in placed:
        resources, count = resources_of(compute, entry), entry.get("count")
        count = count if isinstance(count, int) and not isinstance(count, bool) else 0
        cpu = _milli_cpu(mapping(resources.get("cpu")).get("units")) or 0
        gpu = whole(mapping(resources.get("gpu")).get("units", 0)) or 0
        memory = _bytes(mapping(resources.get("memory")).get("size")) or 0
        total = totals.get(group, [0, 0, 0])
        totals[group] = [
            t + each * count for t, each in zip(total, (cpu, gpu, memory), strict=True)
        ]
    problems = []
    for group, asked in sorted(totals.items()):
        for (what, scale, limit), value in zip(_GROUP_LIMITS, asked, strict=True):
            if value > limit.high:
                problems.append(
                    f"profiles.placement.{group}: the services placed there ask for "
                    f"{value / scale:,.0f} {what} in all (units x count); expected {limit}"
                )
    return problems
