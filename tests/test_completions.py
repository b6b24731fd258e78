"""Shell completions: the committed scripts are current, and the protocol they call answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "completions"))

import generate  # noqa: E402


def test_committed_scripts_match_a_fresh_generation() -> None:
    for name, text in generate.scripts().items():
        assert (ROOT / "completions" / name).read_text() == text, f"run python completions/generate.py ({name})"


@pytest.mark.parametrize(("words", "cword", "expected"), [
    ("rerank sc", 1, {"score"}),
    ("rerank ba", 1, {"batch"}),
    ("rerank batch --re", 2, {"--return-documents", "--refresh", "--revision"}),
    ("rerank models p", 2, {"pull", "path"}),
    ("rerank score --skip", 2, {"--skip-invalid"}),
    ("rerank rerank -m Xenova/ms-marco-MiniLM-L-1", 3, {"Xenova/ms-marco-MiniLM-L-12-v2"}),
    ("rerank score -m jina", 3, {"jinaai/jina-reranker-v1-tiny-en", "jinaai/jina-reranker-v1-turbo-en",
                                 "jinaai/jina-reranker-v2-base-multilingual"}),
])
def test_bash_completion_protocol(words: str, cword: int, expected: set[str]) -> None:
    # What the installed bash script runs at each <TAB>: a real process, as the shell would start it.
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_RERANK_COMPLETE": "complete_bash"}
    out = subprocess.run([sys.executable, "-m", "rerank_cli"], env=env, capture_output=True, text=True)
    assert set(out.stdout.split()) == expected
