"""Shared fixtures: the tiny real models, their PyTorch references, and an isolated environment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
BERT = FIXTURES / "tiny-bert"
XLMR = FIXTURES / "tiny-xlmr"
REFERENCES = json.loads((FIXTURES / "references.json").read_text(encoding="utf-8"))
PAIRS = [tuple(p) for p in REFERENCES["pairs"]]
TOLERANCE = 1e-4


def reference_scores(model: str) -> list[float]:
    """PyTorch (sentence-transformers CrossEncoder) scores for PAIRS, recorded by generate.py."""
    return REFERENCES["models"][model]["scores"]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every cache and config location at tmp_path so tests never touch the user's files."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RERANK_HOME", str(home / "rerank"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for var in ("RERANK_CACHE_DIR", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "RERANK_MODEL", "RERANK_DEBUG", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def model_copy(tmp_path: Path):
    """Copy a fixture model into tmp_path so a test can damage or edit it."""

    def make(source: Path = BERT) -> Path:
        target = tmp_path / f"copy-{source.name}"
        shutil.copytree(source, target)
        return target

    return make
