"""Batching: every row in exactly one batch, similar lengths together, top-k ordering."""

from __future__ import annotations

import random

from rerank_cli.engine.batching import plan_batches, windows
from rerank_cli.pipeline import best_first


def test_plan_batches_covers_each_row_once_longest_first() -> None:
    lengths = [random.Random(7).randint(3, 400) for _ in range(1000)]
    batches = plan_batches(lengths, batch_size=32)
    flat = [int(i) for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert all(len(b) <= 32 for b in batches)
    longest = [max(lengths[i] for i in b) for b in batches]
    assert longest == sorted(longest, reverse=True)


def test_token_budget_bounds_padded_tokens_but_keeps_one_row() -> None:
    lengths = [500, 100, 100, 100, 100, 10, 10]
    batches = plan_batches(lengths, batch_size=64, token_budget=300)
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 300
    assert [int(i) for i in batches[0]] == [0]


def test_windows() -> None:
    assert list(windows(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(windows([], 3)) == []


def test_best_first_ties_by_input_order_and_top_k() -> None:
    scored = [(0.5, 0, "a"), (0.9, 1, "b"), (0.5, 2, "c"), (0.9, 3, "d"), (0.1, 4, "e")]
    assert [p for _, _, p in best_first(scored, None)] == ["b", "d", "a", "c", "e"]
    assert [p for _, _, p in best_first(iter(scored), 3)] == ["b", "d", "a"]
    assert best_first(scored, 10) == best_first(scored, None)
    assert best_first(scored, 0) == []
