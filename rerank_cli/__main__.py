"""`python -m rerank_cli`: the same as the `rerank` command."""

from rerank_cli.cli import main

main()
