"""The peers bench.py compares with: their venvs (made on first use, pinned), versions and model layouts.

Each peer gets its own venv under benchmarks/work/, because their pins conflict with each other and
with ours (FastEmbed pins huggingface_hub<2). Every ONNX peer gets the onnxruntime version of the
Python running bench.py, so ONNX scorers differ in what they do around the same kernels. A venv that
cannot be built is reported and its peers skipped; bench.py never fails for a missing peer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"


def onnxruntime_pin() -> str:
    from importlib.metadata import version

    return f"onnxruntime=={version('onnxruntime')}"


@dataclass(frozen=True)
class Env:
    """A peer venv: packages installed in order (torch first, so pip takes the local CPU build)."""

    name: str
    steps: tuple[tuple[str, ...], ...]
    versions_of: tuple[str, ...]

    def python(self, work: Path) -> Path:
        return work / f"{self.name}-venv" / "bin" / "python"


def envs() -> dict[str, Env]:
    ort = onnxruntime_pin()
    return {
        "st": Env("st", (("torch==2.13.0",), ("sentence-transformers==6.2.0", "transformers==5.24.0")),
                  ("sentence-transformers", "torch", "transformers")),
        # ST's `onnx` extra is optimum-onnx[onnxruntime], whose only release (0.1.0) needs transformers<4.58,
        # while ST 6.x needs transformers>=5: 5.7.0 is the newest ST that installs with its ONNX backend.
        "st-onnx": Env("st-onnx", (("torch==2.13.0",), ("sentence-transformers[onnx]==5.7.0",
                                                         "optimum-onnx[onnxruntime]==0.1.0", "transformers==4.57.6",
                                                         ort)),
                       ("sentence-transformers", "optimum-onnx", "transformers", "onnxruntime")),
        "fastembed": Env("fastembed", (("fastembed==0.9.1", ort),), ("fastembed", "onnxruntime")),
        "flashrank": Env("flashrank", (("flashrank==0.2.10", ort),), ("flashrank", "onnxruntime")),
    }


@dataclass(frozen=True)
class Peer:
    """One peer row: which venv runs peers.py with which scorer, and on which model layout."""

    key: str
    label: str
    env: str
    scorer: str
    layout: str = "model"  # model | same-work | flashrank
    extra: str = ""
    same_work: bool = True  # scores the same tokens as we do: counts for the goals and the memory check


FLASHRANK_NAME = "ms-marco-MiniLM-L-12-v2"  # a key of FlashRank's model_file_map; only the directory name counts
PEERS = (
    Peer("sentence-transformers", "sentence-transformers CrossEncoder, PyTorch CPU", "st", "sentence-transformers"),
    Peer("sentence-transformers-onnx", 'sentence-transformers CrossEncoder, `backend="onnx"`', "st-onnx",
         "sentence-transformers-onnx"),
    # FastEmbed honours tokenizer_config.json's stray `max_length` (128 here) and so scores truncated
    # documents; the main row runs it on a copy without that key, so it does the same work.
    Peer("fastembed", "FastEmbed TextCrossEncoder", "fastembed", "fastembed", "same-work"),
    Peer("fastembed-default", "FastEmbed TextCrossEncoder (its default: truncates at 128 tokens)", "fastembed",
         "fastembed", same_work=False),
    Peer("flashrank", "FlashRank (`max_length=512`)", "flashrank", "flashrank", "flashrank", "512"),
    Peer("flashrank-default", "FlashRank (its default `max_length`)", "flashrank", "flashrank", "flashrank", "",
         same_work=False),
)
DEFAULT_PEERS = ("sentence-transformers", "sentence-transformers-onnx", "fastembed", "flashrank", "flashrank-default")


def ready_python(env: Env, work: Path) -> Path | None:
    """The venv's python, building the venv on first use (or when its pins changed); None if it cannot be built."""
    python = env.python(work)
    stamp = python.parent.parent / "bench-pins.json"
    wanted = json.dumps(env.steps)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"setting up the {env.name} venv (once, a few minutes)...", file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "venv", "--clear", str(python.parent.parent)], capture_output=True)
    for step in env.steps:
        if done.returncode != 0:
            break
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", *step], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"{env.name} venv could not be built: {str(done.stderr)[-600:]}", file=sys.stderr)
        return None
    stamp.write_text(wanted)
    return python


def versions(python: Path, names: tuple[str, ...]) -> str:
    code = ("import importlib.metadata as m, sys\n"
            "for n in sys.argv[1:]:\n"
            "    try: print(n, m.version(n))\n"
            "    except m.PackageNotFoundError: pass\n")
    out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True).stdout
    return ", ".join(out.split("\n")[:-1])


def flashrank_default_max_length(python: Path) -> int | None:
    """FlashRank's own default `max_length` (512 in 0.2.10), read from its installed signature."""
    code = "import inspect, flashrank; print(inspect.signature(flashrank.Ranker).parameters['max_length'].default)"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return int(out.stdout) if out.returncode == 0 else None


def same_work_copy(model: Path, tmp: Path) -> Path:
    """A copy of the model whose tokenizer_config.json has no stray `max_length` (files symlinked)."""
    copy = tmp / "same-work-model"
    if not copy.exists():
        _link_tree(model, copy, skip={"tokenizer_config.json"})
        config = json.loads((model / "tokenizer_config.json").read_text())
        config.pop("max_length", None)
        (copy / "tokenizer_config.json").write_text(json.dumps(config))
    return copy


def flashrank_cache(model: Path, tmp: Path) -> Path:
    """A FlashRank cache dir holding our model: FlashRank opens CACHE/NAME/<model_file_map[NAME]> and reads
    config.json, tokenizer_config.json, special_tokens_map.json and tokenizer.json beside it. Its loader
    downloads only when CACHE/NAME is missing, so this layout keeps it offline."""
    cache = tmp / "flashrank-cache"
    target = cache / FLASHRANK_NAME
    if not target.exists():
        target.mkdir(parents=True)
        for name in ("config.json", "tokenizer_config.json", "tokenizer.json"):
            (target / name).symlink_to((model / name).resolve())
        (target / "flashrank-MiniLM-L-12-v2_Q.onnx").symlink_to((model / "onnx/model.onnx").resolve())
        # transformers 5 writes no special_tokens_map.json; FlashRank needs one: the same tokens, from the config.
        config = json.loads((model / "tokenizer_config.json").read_text())
        keys = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
        (target / "special_tokens_map.json").write_text(json.dumps({k: config[k] for k in keys if k in config}))
    return cache


def _link_tree(src: Path, dst: Path, skip: set[str]) -> None:
    for item in src.rglob("*"):
        target = dst / item.relative_to(src)
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif item.name not in skip:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(item.resolve())


def fastembed_python(work: Path = WORK) -> str | None:
    """The FastEmbed venv's python (built on first use), for many_queries.py."""
    python = ready_python(envs()["fastembed"], work)
    return str(python) if python else None

