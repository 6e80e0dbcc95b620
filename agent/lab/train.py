"""`forager train`: a LoRA adapter for the agents' own model, from exported lives.

The base is the GGUF the agents run, dequantized by `transformers` (`gguf_file=`); nothing is
fetched from a model hub. LoRA (`peft`) on the attention and MLP projections, trained on the
SFT rows of `forager dataset export` with the loss on the completion only; CPU by default, a
GPU when there is one; seeded. The adapter is converted to GGUF with the converter of the
llama.cpp inside the installed `llama-cpp-python` (from its source distribution on PyPI), so
llama.cpp loads exactly what was trained. Needs the `train` extra (torch, transformers, peft).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from agent.errors import ConfigError

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_CONVERTER = "convert_lora_to_gguf.py"


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 60
    batch: int = 8
    learning_rate: float = 2e-4
    rank: int = 8
    alpha: int = 16
    seed: int = 0
    max_tokens: int = 1280  # longer rows are skipped (the prompt is ~1 000 tokens)


@dataclass
class Manifest:
    """What made an adapter: written next to it as `manifest.json`."""

    adapter: str
    adapter_sha256: str
    base_model: str
    base_model_sha256: str
    dataset: str
    dataset_sha256: str
    rows: int
    parent_generation: int
    generation: int
    settings: dict[str, Any]
    device: str
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    population_seeds: list[int] = field(default_factory=list)  # arena seeds the data lived on


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_rows(dataset: Path) -> list[dict[str, Any]]:
    """SFT rows (`{"prompt": [messages], "completion": [assistant message]}`), checked."""
    rows = []
    try:
        lines = dataset.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"dataset {dataset} cannot be read: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt, completion = row["prompt"], row["completion"]
            assert isinstance(prompt, list) and isinstance(completion, list) and completion
        except (ValueError, KeyError, TypeError, AssertionError):
            raise ConfigError(
                f"dataset {dataset}, line {number}: expected an SFT row "
                '{"prompt": [messages], "completion": [assistant message]} '
                "(forager dataset export --format sft)"
            ) from None
        rows.append(row)
    if not rows:
        raise ConfigError(f"dataset {dataset} has no rows")
    return rows


def converter(cache_dir: Path) -> Path:
    """`convert_lora_to_gguf.py` of the installed llama-cpp-python's llama.cpp, unpacked once
    from its source distribution (PyPI), with the `gguf-py` it was written against."""
    import llama_cpp

    version = llama_cpp.__version__
    root = cache_dir / f"llama-cpp-src-{version}"
    script = root / _CONVERTER
    if script.is_file():
        return script
    download = cache_dir / "sdist"
    download.mkdir(parents=True, exist_ok=True)
    name = f"llama_cpp_python-{version}.tar.gz"
    if not (download / name).is_file():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "--quiet", f"llama-cpp-python=={version}", "-d", str(download)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not (download / name).is_file():
            raise ConfigError(
                f"llama-cpp-python {version}'s source (for its LoRA converter) could not be "
                f"downloaded from PyPI: {done.stderr.strip()[-300:]}"
            )
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    wanted = (
        prefix + "convert_hf_to_gguf.py",
        prefix + _CONVERTER,
        prefix + "gguf-py/",
        prefix + "conversion/",
    )
    tmp = root.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(download / name) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(wanted)]
        for member in members:
            member.name = member.name.removeprefix(prefix)
        archive.extractall(tmp, members=members, filter="data")
    tmp.replace(root)
    return script


def train(
    dataset: Path,
    out: Path,
    model_path: Path,
    cache_dir: Path,
    settings: TrainSettings,
    parent_generation: int = 0,
    progress: Callable[[int, float], None] | None = None,
    population_seeds: Sequence[int] = (),
) -> Manifest:
    """Train an adapter on `dataset`, write it to `out` (adapter.gguf, peft/, manifest.json)."""
    missing = [m for m in ("torch", "transformers", "peft", "gguf") if not find_spec(m)]
    if missing:
        raise ConfigError(
            "training needs the train extra (pip install 'openforager[train]'); missing: "
            + ", ".join(missing)
        )
    rows = read_rows(dataset)
    with warnings.catch_warnings():
        # transformers' and peft's own deprecations and notes, not the caller's to act on
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Could not find a config file")
        manifest = _train(
            rows, dataset, out, model_path, cache_dir, settings, parent_generation, progress
        )
    manifest.population_seeds = sorted(population_seeds)
    (out / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def _train(
    rows: list[dict[str, Any]],
    dataset: Path,
    out: Path,
    model_path: Path,
    cache_dir: Path,
    settings: TrainSettings,
    parent_generation: int,
    progress: Callable[[int, float], None] | None,
) -> Manifest:
    import peft
    import torch
    import transformers

    started = time.monotonic()
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder, name = str(model_path.parent), model_path.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    )
    examples = [
        x for x in (_encode(tokenizer, row) for row in rows) if len(x[0]) <= settings.max_tokens
    ]
    if not examples:
        raise ConfigError(f"no row of {dataset} fits in {settings.max_tokens} tokens")
    lora = peft.LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,
        target_modules=list(TARGETS),
        task_type="CAUSAL_LM",
    )
    model = peft.get_peft_model(model, lora).to(device)
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate
    )
    order = random.Random(settings.seed)  # noqa: S311 -- batch order, not a secret
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    losses = []
    for step in range(1, settings.steps + 1):
        batch = [examples[order.randrange(len(examples))] for _ in range(settings.batch)]
        ids, labels, mask = _pad(batch, pad, torch, device)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(round(float(loss.item()), 5))
        if progress is not None:
            progress(step, losses[-1])
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out / "peft")
    base = out / "base"
    config = model.get_base_model().config.to_dict()
    config["architectures"] = config.get("architectures") or ["LlamaForCausalLM"]
    config.pop("quantization_config", None)  # the weights trained on were dequantized
    base.mkdir(exist_ok=True)
    (base / "config.json").write_text(json.dumps(config, indent=2, default=str))
    adapter = out / "adapter.gguf"
    _convert(converter(cache_dir), base, out / "peft", adapter)
    manifest = Manifest(
        adapter=adapter.name,
        adapter_sha256=sha256(adapter),
        base_model=name,
        base_model_sha256=sha256(model_path),
        dataset=str(dataset),
        dataset_sha256=sha256(dataset),
        rows=len(examples),
        parent_generation=parent_generation,
        generation=parent_generation + 1,
        settings=asdict(settings),
        device=device,
        losses=losses,
        seconds=round(time.monotonic() - started, 1),
    )
    (out / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def _encode(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], int]:
    """Token ids of prompt + completion, and where the completion starts."""
    prompt = tokenizer.apply_chat_template(
        row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full = tokenizer.apply_chat_template(
        row["prompt"] + row["completion"], tokenize=True, return_dict=True
    )["input_ids"]
    return list(full), len(prompt)


def _pad(batch: Sequence[tuple[list[int], int]], pad: int, torch: Any, device: str) -> Any:
    width = max(len(ids) for ids, _ in batch)
    ids_rows, label_rows, mask_rows = [], [], []
    for ids, start in batch:
        fill = width - len(ids)
        ids_rows.append(ids + [pad] * fill)
        label_rows.append([-100] * start + ids[start:] + [-100] * fill)
        mask_rows.append([1] * len(ids) + [0] * fill)

    def as_tensor(rows: list[list[int]]) -> Any:
        return torch.tensor(rows, dtype=torch.long, device=device)

    return as_tensor(ids_rows), as_tensor(label_rows), as_tensor(mask_rows)


def _convert(script: Path, base: Path, peft_dir: Path, adapter: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(script.parent / "gguf-py"), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, str(script), "--base", str(base), "--outfile", str(adapter),
         "--outtype", "f16", str(peft_dir)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if done.returncode != 0 or not adapter.is_file():
        raise ConfigError(f"the LoRA adapter could not be converted to GGUF: {done.stderr[-800:]}")
