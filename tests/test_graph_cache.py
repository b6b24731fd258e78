"""onnxruntime's optimized graph, saved on the first CPU load and loaded from the cache afterwards."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import BERT, FIXTURES, PAIRS, REFERENCES, TOLERANCE, reference_scores

from rerank_cli import Reranker
from rerank_cli.engine.session import cached_graph, graph_cache_dir

MODELS = sorted(REFERENCES["models"])


@pytest.mark.parametrize("name", MODELS)
def test_cached_graph_scores_equal_the_reference(name: str) -> None:
    first = Reranker(FIXTURES / name, activation="none").score_pairs(PAIRS)
    cached = cached_graph(Reranker(FIXTURES / name).files.onnx)
    assert cached is not None and cached.is_file() and cached.parent.parent == graph_cache_dir()
    again = Reranker(FIXTURES / name, activation="none").score_pairs(PAIRS)
    np.testing.assert_allclose(again, first, atol=1e-6, rtol=0)
    if REFERENCES["models"][name]["labels"] == 1:
        np.testing.assert_allclose(again, reference_scores(name), atol=TOLERANCE, rtol=0)


def test_cache_lives_under_rerank_home(isolated_env: Path) -> None:
    assert graph_cache_dir() == isolated_env / "rerank" / "graphs"


def test_a_changed_model_file_gets_a_new_cache_entry(model_copy) -> None:
    model = model_copy(BERT)
    onnx = model / "onnx" / "model.onnx"
    before = cached_graph(onnx)
    stat = onnx.stat()
    os.utime(onnx, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cached_graph(onnx) not in (None, before)


def test_a_damaged_cache_entry_is_rebuilt() -> None:
    Reranker(BERT)
    cached = cached_graph(Reranker(BERT).files.onnx)
    assert cached is not None
    cached.write_bytes(b"not a graph")
    scores = Reranker(BERT, activation="none").score_pairs(PAIRS)
    np.testing.assert_allclose(scores, reference_scores("tiny-bert"), atol=TOLERANCE, rtol=0)
    assert cached.stat().st_size > 1000  # written again from the model
    assert cached.with_name(cached.name + ".data").is_file()


def test_an_unwritable_cache_only_costs_the_saving(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("RERANK_HOME", str(blocker))  # graphs/ cannot be made under a file
    scores = Reranker(BERT, activation="none").score_pairs(PAIRS)
    np.testing.assert_allclose(scores, reference_scores("tiny-bert"), atol=TOLERANCE, rtol=0)
    assert not any(tmp_path.rglob("*.tmp"))


def test_external_data_graphs_are_not_copied() -> None:
    assert cached_graph(FIXTURES / "tiny-xlmr" / "onnx-ext" / "model.onnx") is None


def test_a_rebuilt_entry_replaces_the_stale_one(model_copy) -> None:
    model = model_copy(BERT)
    onnx = model / "onnx" / "model.onnx"
    Reranker(model)
    old = cached_graph(onnx)
    stat = onnx.stat()
    os.utime(onnx, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    Reranker(model)
    new = cached_graph(onnx)
    assert new is not None and new.is_file() and old is not None and not old.parent.exists()
    assert list(graph_cache_dir().iterdir()) == [new.parent]


def test_an_entry_keeps_the_weights_beside_the_graph_and_replaces_a_single_file_entry(model_copy) -> None:
    model = model_copy(BERT)
    onnx = model / "onnx" / "model.onnx"
    cached = cached_graph(onnx)
    assert cached is not None
    old_style = cached.parent.with_name(cached.parent.name.rsplit("-", 1)[0] + "-0123456789ab.onnx")
    old_style.parent.mkdir(parents=True)
    old_style.write_bytes(b"a rerank 0.2 pre-release entry")
    scores = Reranker(model, activation="none").score_pairs(PAIRS)
    np.testing.assert_allclose(scores, reference_scores("tiny-bert"), atol=TOLERANCE, rtol=0)
    weights = cached.with_name(cached.name + ".data")
    assert weights.stat().st_size > onnx.stat().st_size / 2 > cached.stat().st_size  # weights moved out
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name, weights.name, "source.txt"]
    assert list(graph_cache_dir().iterdir()) == [cached.parent]  # the old single file is gone


def test_a_cache_entry_from_another_process_is_used_not_replaced(model_copy) -> None:
    model = model_copy(BERT)
    onnx = model / "onnx" / "model.onnx"
    Reranker(model)
    cached = cached_graph(onnx)
    assert cached is not None
    written = cached.stat().st_mtime_ns
    Reranker(model, activation="none").score_pairs(PAIRS)
    assert cached.stat().st_mtime_ns == written
    assert not [p for p in graph_cache_dir().iterdir() if p.name.endswith(".tmp")]


def test_entries_of_deleted_model_files_are_pruned_and_others_kept(tmp_path: Path) -> None:
    import shutil

    from conftest import XLMR

    gone, kept, new = (tmp_path / name for name in ("gone", "kept", "new"))
    for target, source in ((gone, BERT), (kept, XLMR), (new, BERT)):
        shutil.copytree(source, target)
    Reranker(gone)
    Reranker(kept)
    entries = {name: cached_graph(path / "onnx" / "model.onnx") for name, path in (("gone", gone), ("kept", kept))}
    assert all(e is not None and e.is_file() for e in entries.values())
    assert (entries["gone"].parent / "source.txt").read_text().strip() == str((gone / "onnx" / "model.onnx").resolve())
    shutil.rmtree(gone)  # a model deleted (or a temporary directory removed) after its first load
    Reranker(new)  # any entry saved prunes the cache
    assert not entries["gone"].parent.exists()
    assert entries["kept"].is_file()
    assert len(list(graph_cache_dir().iterdir())) == 2
