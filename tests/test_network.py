"""Opt-in (`python -m pytest -m network`): pull the real default model from the Hugging Face Hub.

Needs internet access; it is deselected by default (pyproject addopts) and never runs in CI here.
"""

from __future__ import annotations

import pytest

from rerank_cli import Reranker


@pytest.mark.network
def test_real_default_model_ranks_the_obvious_answer_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    docs = ["Berlin is the capital of Germany.", "Paris is the capital and largest city of France.",
            "Croissants are a French pastry."]
    ranked = Reranker("Xenova/ms-marco-MiniLM-L-6-v2").rerank("what is the capital of france", docs)
    assert ranked[0][0] == 1 and ranked[0][1] > ranked[1][1] + 1.0
