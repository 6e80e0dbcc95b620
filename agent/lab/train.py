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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from agent.core.prompt import PROMPTS
from agent.errors import ConfigError
from agent.lab.value_fit import (
    State,
    anchored,
    answer_distributions,
    encode_states,
    fit_values,
    pooled,
    read_labels,
)
from agent.reports.progress import Progress, Silent

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
    objective: str = "sft"  # "sft": imitate completions; "values": fit counterfactual values
    tau: float = 2.0  # "values": ticks of expected life by which a better answer is e x likelier
    # "values": the share of the target that is the parent's own answer distribution (a KL
    # anchor: the generation cannot move further from its parent than the values pull it), and
    # the parent: an adapter folder (`forager train --out`), or None for the base model.
    anchor: float = 0.0
    anchor_to: str | None = None
    # "values": the gradient flows through each state's observation too, so the adapter learns
    # how the observation is read (off: only through the answer, which reads it as the base does).
    read_observation: bool = True
    # an adapter folder (`forager train --out`) whose weights the training starts from
    # (a generation trained further, or a child from its parent); None: a fresh adapter.
    init_from: str | None = None
    # "values": each answer's value is its mean over the labelled states in the same situation
    # (`agent.lab.value_fit.pooled`), not one state's own few futures.
    pool: bool = False


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
    prompt: str | None = None  # the rows' system prompt (`agent.core.prompt.PROMPTS`), if known


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_rows(dataset: Path) -> list[dict[str, Any]]:
    """SFT rows (`{"prompt": [messages], "completion": [assistant message]}`), checked."""
    try:
        lines = dataset.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"dataset {dataset} cannot be read: {exc.strerror}") from exc
    rows = [_row(dataset, number, line) for number, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise ConfigError(f"dataset {dataset} has no rows")
    return rows


def _row(dataset: Path, number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
        prompt, completion = row["prompt"], row["completion"]
        assert isinstance(prompt, list) and isinstance(completion, list) and completion
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise ConfigError(
            f"dataset {dataset}, line {number}: expected an SFT row "
            '{"prompt": [messages], "completion": [assistant message]} '
            "(forager dataset export --format sft)"
        ) from exc
    return dict(row)


def converter(cache_dir: Path) -> Path:
    """`convert_lora_to_gguf.py` of the installed llama-cpp-python's llama.cpp, unpacked once
    from its source distribution (PyPI), with the `gguf-py` it was written against."""
    import llama_cpp

    version = llama_cpp.__version__
    root = cache_dir / f"llama-cpp-src-{version}"
    script = root / _CONVERTER
    if not script.is_file():
        _unpack(_sdist(version, cache_dir / "sdist"), version, root)
    return script


def _sdist(version: str, download: Path) -> Path:
    """llama-cpp-python's source distribution, downloaded from PyPI unless it is already."""
    download.mkdir(parents=True, exist_ok=True)
    archive = download / f"llama_cpp_python-{version}.tar.gz"
    if archive.is_file():
        return archive
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "--quiet", f"llama-cpp-python=={version}", "-d", str(download)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 or not archive.is_file():
        raise ConfigError(
            f"llama-cpp-python {version}'s source (for its LoRA converter) could not be "
            f"downloaded from PyPI: {done.stderr.strip()[-300:]}"
        )
    return archive


def _unpack(sdist: Path, version: str, root: Path) -> None:
    """The converter and what it imports, from the vendored llama.cpp, into `root` at once."""
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    wanted = tuple(
        prefix + name for name in ("convert_hf_to_gguf.py", _CONVERTER, "gguf-py/", "conversion/")
    )
    tmp = root.with_name(f"{root.name}.{os.getpid()}.tmp")  # one per process: trainings race
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(wanted)]
        for member in members:
            member.name = member.name.removeprefix(prefix)
        archive.extractall(tmp, members=members, filter="data")
    try:
        tmp.replace(root)  # whole or not at all: a half-unpacked tree is never found
    except OSError:
        if not root.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another training unpacked the same files first


def train(
    dataset: Path,
    out: Path,
    model_path: Path,
    cache_dir: Path,
    settings: TrainSettings,
    parent_generation: int = 0,
    progress: Progress = Silent(),
    population_seeds: Sequence[int] = (),
) -> Manifest:
    """Train an adapter on `dataset`, write it to `out` (adapter.gguf, peft/, manifest.json).

    `progress` gets one phase of `settings.steps` training steps, each noting its loss."""
    require_train_extra()
    settings = started_from(settings)
    rows = read_labels(dataset) if settings.objective == "values" else read_rows(dataset)
    started = time.monotonic()
    with library_notes_hidden():
        trained = _train(rows, dataset, out, model_path, cache_dir, settings, progress)
    seconds = round(time.monotonic() - started, 1)
    manifest = _manifest(trained, dataset, model_path, settings, parent_generation)
    manifest.population_seeds = sorted(population_seeds)
    manifest.prompt = rows_prompt(rows)
    manifest.seconds = seconds
    (out / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def started_from(settings: TrainSettings) -> TrainSettings:
    """With `init_from`, the rank and alpha that train are the loaded adapter's own, whatever
    was asked: the settings (and so the manifest) say so."""
    if not settings.init_from:
        return settings
    path = Path(settings.init_from) / "peft" / "adapter_config.json"
    try:
        config = json.loads(path.read_text())
        rank, alpha = int(config["r"]), int(config["lora_alpha"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path} cannot be read as a LoRA adapter's config (expected a forager train --out)"
        ) from exc
    return replace(settings, rank=rank, alpha=alpha)


def require_train_extra() -> None:
    missing = [m for m in ("torch", "transformers", "peft", "gguf") if not find_spec(m)]
    if missing:
        raise ConfigError(
            "training needs the train extra (pip install 'openforager[train]'); missing: "
            + ", ".join(missing)
        )


@contextmanager
def library_notes_hidden() -> Iterator[None]:
    """transformers' and peft's own deprecations and notes: not the caller's to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Could not find a config file")
        yield


@dataclass(frozen=True)
class _Trained:
    """What a training run made: the GGUF adapter, and what it learned from and on."""

    adapter: Path
    rows: int
    device: str
    losses: list[float]


def _train(
    rows: list[dict[str, Any]],
    dataset: Path,
    out: Path,
    model_path: Path,
    cache_dir: Path,
    settings: TrainSettings,
    progress: Progress,
) -> _Trained:
    import torch

    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer, model = load_base(model_path)
    if settings.objective == "values":
        base = (tokenizer, model)
        return _train_values(rows, dataset, out, base, cache_dir, settings, device, progress)
    examples = [
        x for x in (_encode(tokenizer, row) for row in rows) if len(x[0]) <= settings.max_tokens
    ]
    if not examples:
        raise ConfigError(f"no row of {dataset} fits in {settings.max_tokens} tokens")
    model = _with_lora(model, settings, device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    losses = _fit(model, examples, settings, pad, device, progress)
    adapter = _save(model, out, converter(cache_dir))
    return _Trained(adapter, len(examples), device, losses)


def _train_values(
    rows: list[dict[str, Any]],
    dataset: Path,
    out: Path,
    base: tuple[Any, Any],
    cache_dir: Path,
    settings: TrainSettings,
    device: str,
    progress: Progress,
) -> _Trained:
    """The adapter from counterfactual values (`agent.lab.value_fit`)."""
    tokenizer, model = base
    if settings.pool:
        rows = pooled(rows)
    states = encode_states(tokenizer, rows, settings.tau, settings.max_tokens)
    if not states:
        raise ConfigError(
            f"no state of {dataset} has a significant best answer and fits in "
            f"{settings.max_tokens} tokens (forager label marks them `significant`)"
        )
    if settings.anchor:
        states = _anchored(states, model, settings, device, progress)
    model = _with_lora(model, settings, device)
    s = settings
    losses = fit_values(
        model,
        states,
        s.steps,
        s.batch,
        s.learning_rate,
        s.seed,
        device,
        progress,
        read_observation=s.read_observation,
    )
    adapter = _save(model, out, converter(cache_dir))
    return _Trained(adapter, len(states), device, losses)


def _anchored(
    states: list[State], base: Any, settings: TrainSettings, device: str, progress: Progress
) -> list[State]:
    """The states' targets mixed with the parent's own answer distribution on them."""
    model = base.to(device)
    if settings.anchor_to:
        import peft

        model = peft.PeftModel.from_pretrained(base, str(Path(settings.anchor_to) / "peft"))
    parent = answer_distributions(model, states, device, progress)
    if settings.anchor_to:
        model.unload()  # the base again, without the parent's adapter
    return anchored(states, parent, settings.anchor)


def rows_prompt(rows: Sequence[dict[str, Any]]) -> str | None:
    """Which of `PROMPTS` the rows' system message is (the first row's), if one is."""
    system = next((m["content"] for m in rows[0]["prompt"] if m.get("role") == "system"), None)
    return next((name for name, text in PROMPTS.items() if system == text), None)


def load_base(model_path: Path) -> tuple[Any, Any]:
    """The tokenizer and the base model, dequantized from the GGUF by transformers."""
    import torch
    import transformers

    folder, name = str(model_path.parent), model_path.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    )
    return tokenizer, model


def _with_lora(model: Any, settings: TrainSettings, device: str) -> Any:
    import peft

    if settings.init_from:
        folder = str(Path(settings.init_from) / "peft")
        return peft.PeftModel.from_pretrained(model, folder, is_trainable=True).to(device)

    lora = peft.LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,
        target_modules=list(TARGETS),
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora).to(device)


def _fit(
    model: Any,
    examples: Sequence[tuple[list[int], int]],
    settings: TrainSettings,
    pad: int,
    device: str,
    progress: Progress,
) -> list[float]:
    """`settings.steps` optimizer steps on seeded random batches; the loss of each."""
    import torch

    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate
    )
    order = random.Random(settings.seed)  # noqa: S311 -- batch order, not a secret
    progress.phase("train", settings.steps)
    losses: list[float] = []
    for _ in range(settings.steps):
        batch = [examples[order.randrange(len(examples))] for _ in range(settings.batch)]
        ids, labels, mask = _pad(batch, pad, torch, device)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(round(float(loss.item()), 5))
        progress.step(f"loss {losses[-1]:.4f}")
    return losses


def _save(model: Any, out: Path, script: Path) -> Path:
    """The PEFT adapter in `out/peft`, and it converted to `out/adapter.gguf`."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out / "peft")
    base = out / "base"
    config = model.get_base_model().config.to_dict()
    config["architectures"] = config.get("architectures") or ["LlamaForCausalLM"]
    config.pop("quantization_config", None)  # the weights trained on were dequantized
    base.mkdir(exist_ok=True)
    (base / "config.json").write_text(json.dumps(config, indent=2, default=str))
    adapter = out / "adapter.gguf"
    _convert(script, base, out / "peft", adapter)
    return adapter


def _manifest(
    trained: _Trained,
    dataset: Path,
    model_path: Path,
    settings: TrainSettings,
    parent_generation: int,
) -> Manifest:
    return Manifest(
        adapter=trained.adapter.name,
        adapter_sha256=sha256(trained.adapter),
        base_model=model_path.name,
        base_model_sha256=sha256(model_path),
        dataset=str(dataset),
        dataset_sha256=sha256(dataset),
        rows=trained.rows,
        parent_generation=parent_generation,
        generation=parent_generation + 1,
        settings=asdict(settings),
        device=trained.device,
        losses=trained.losses,
    )


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
