"""Regenerate the shell completion scripts in this folder: `python completions/generate.py`.

The scripts are thin shims: at each <TAB> the shell runs `rerank` with `_RERANK_COMPLETE` set, and
rerank answers with its subcommands, options and, for `-m`, the registry's model names. They come
from Typer's own templates (typer._completion_shared, the code behind `--show-completion`), which
has no public function for a named shell. tests/test_completions.py checks they are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = {"bash": "rerank.bash", "zsh": "_rerank", "fish": "rerank.fish"}


def scripts() -> dict[str, str]:
    """File name -> script text, for every supported shell."""
    from typer._completion_shared import get_completion_script

    return {name: get_completion_script(prog_name="rerank", complete_var="_RERANK_COMPLETE", shell=shell) + "\n"
            for shell, name in FILES.items()}


def main() -> int:
    for name, text in scripts().items():
        (HERE / name).write_text(text)
        print(HERE / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
