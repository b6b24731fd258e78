"""Model records: what files make a cross-encoder, and where a local model directory keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ModelUnavailable

# Where published ONNX rerankers keep their graph, in the order we look (Xenova/FastEmbed layout first).
ONNX_CANDIDATES = ("onnx/model.onnx", "model.onnx")
REQUIRED_FILES = ("tokenizer.json", "config.json")
OPTIONAL_FILES = ("tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """A model ready to load: its directory and the ONNX graph inside it."""

    directory: Path
    onnx: Path


def local_model(directory: Path, onnx_file: str | None = None) -> ModelFiles:
    """Check a model directory holds what a cross-encoder needs, naming the first missing file."""
    if not directory.is_dir():
        raise ModelUnavailable(f"{directory}: no such model directory")
    for name in REQUIRED_FILES:
        if not (directory / name).is_file():
            raise ModelUnavailable(f"{directory}: missing {name} (a model directory needs "
                                   f"{', '.join(REQUIRED_FILES)} and an .onnx file)")
    return ModelFiles(directory, find_onnx(directory, onnx_file))


def find_onnx(directory: Path, onnx_file: str | None) -> Path:
    """The named ONNX file, else onnx/model.onnx, else model.onnx; the error lists what exists."""
    candidates = (onnx_file,) if onnx_file else ONNX_CANDIDATES
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    found = sorted(str(p.relative_to(directory)) for p in directory.rglob("*.onnx"))
    wanted = onnx_file or " or ".join(ONNX_CANDIDATES)
    hint = f"; .onnx files here: {', '.join(found)} (choose one with --onnx-file)" if found else ""
    raise ModelUnavailable(f"{directory}: no {wanted}{hint}")
