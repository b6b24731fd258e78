"""`rerank models ...`: list the registry, pull models into the cache, show their path, remove them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import ModelUnavailable
from ..store.registry import DEFAULT_MODEL, REGISTRY, ModelSpec
from .console import download_progress, err_console

if TYPE_CHECKING:
    from pathlib import Path

models_app = typer.Typer(
    help="List, download (pull), locate and remove models in the Hugging Face cache.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Names = Annotated[Optional[list[str]], typer.Argument(metavar="NAME", show_default=False,
                                                      help="Registry names or hub repo ids.")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="A registry name or hub repo id.")]
Variant = Annotated[Optional[str], typer.Option("--variant", show_default=False,
                                               help="A published variant: quantized, int8, fp16, ...")]
Revision = Annotated[Optional[str], typer.Option("--revision", show_default=False,
                                                help="Hub branch, tag or commit [default: main].")]
OnnxFile = Annotated[Optional[str], typer.Option(
    "--onnx-file", show_default=False, help="ONNX file in the repo [default: onnx/model.onnx, else model.onnx].")]
CacheDir = Annotated[Optional[str], typer.Option("--cache-dir", envvar="RERANK_CACHE_DIR", show_default=False,
                                                help="Model cache [default: huggingface_hub's, from HF_HOME].")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars or messages on stderr.")]


def _variants(spec: ModelSpec, cache: Path) -> list[str]:
    from ..store.hub import locate, target_for

    names = [None, *(v for v, _ in spec.variants)]
    return [v or "default" for v in names if locate(target_for(spec.name, variant=v), cache) is not None]


@models_app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts instead of a table.")] = False,
    cache_dir: CacheDir = None,
) -> None:
    """List the built-in models: size, licence, max length, languages, whether cached, description.

    \\b
    Examples:
      rerank models list
      rerank models list --json | jq -r '.[] | select(.cached) | .name'
    """
    from ..store.hub import cache_dir as resolve_cache

    cache = resolve_cache(cache_dir)
    rows = [_row(spec, _variants(spec, cache)) for spec in REGISTRY]
    if as_json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
        return
    _print_table(rows)


def _row(spec: ModelSpec, cached: list[str]) -> dict[str, Any]:
    return {
        "name": spec.name, "repo": spec.repo, "revision": spec.revision, "onnx_file": spec.onnx_file,
        "onnx_data": spec.onnx_data, "size_gb": spec.size_gb, "license": spec.license,
        "non_commercial": "-nc" in spec.license, "max_length": spec.max_length, "languages": list(spec.languages),
        "variants": dict(spec.variants), "default": spec.name == DEFAULT_MODEL, "cached": "default" in cached,
        "cached_variants": cached, "description": spec.description,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    # Names are identifiers people copy: never folded. Other columns wrap inside a narrow terminal.
    table.add_column("name", no_wrap=True, min_width=max(len(r["name"]) + 2 for r in rows))
    for header, width in (("size", 7), ("licence", 16), ("max len", 4), ("languages", 5), ("cached", 6),
                          ("description", 10)):
        table.add_column(header, min_width=width, overflow="fold")
    for r in rows:
        table.add_row(f"{r['name']} *" if r["default"] else r["name"], f"{r['size_gb']:.2f} GB",
                      f"{r['license']} (non-commercial)" if r["non_commercial"] else r["license"],
                      str(r["max_length"]), ", ".join(r["languages"]), ", ".join(r["cached_variants"]) or "no",
                      r["description"])
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 120)  # files and pagers get every column whole
    console.print(table, markup=False)
    console.print("* the default model. Variants: `rerank models pull NAME --variant quantized`.", markup=False)


@models_app.command()
def pull(
    names: Names = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every registry model (CI images).")] = False,
    variant: Variant = None, revision: Revision = None, onnx_file: OnnxFile = None, cache_dir: CacheDir = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Check the hub for a newer revision.")] = False,
    quiet: Quiet = False,
) -> None:
    """Download models into the cache so that later runs work offline (default: the default model).

    \\b
    Examples:
      rerank models pull                                   # the default model
      rerank models pull BAAI/bge-reranker-base --variant quantized
      HF_HOME=.cache/hf rerank models pull --all           # a CI cache step
    """
    from ..store.hub import cache_dir as resolve_cache
    from ..store.hub import locate, offline_requested, target_for
    from ..store.hub import pull as hub_pull

    if offline_requested():
        raise ModelUnavailable("HF_HUB_OFFLINE is set: `rerank models pull` needs the network; unset it to pull")
    cache = resolve_cache(cache_dir)
    chosen = [s.name for s in REGISTRY] if all_models else (names or [DEFAULT_MODEL])
    targets = [target_for(n, variant=variant, revision=revision, onnx_file=onnx_file) for n in chosen]
    for target in targets:
        found = None if refresh else locate(target, cache)
        if found is None:
            with download_progress(quiet) as progress:
                found = hub_pull(target, cache=cache, progress=progress)
            _say(quiet, f"pulled {target.label} -> {found.directory}")
        else:
            _say(quiet, f"{target.label} is already cached at {found.directory}")


@models_app.command()
def path(name: Name, variant: Variant = None, revision: Revision = None, onnx_file: OnnxFile = None,
         cache_dir: CacheDir = None) -> None:
    """Print the directory holding a cached model's files (for Docker layers and debugging).

    \\b
    Example:
      ls "$(rerank models path Xenova/ms-marco-MiniLM-L-6-v2)"
    """
    from ..store.hub import cache_dir as resolve_cache
    from ..store.hub import locate, target_for

    target = target_for(name, variant=variant, revision=revision, onnx_file=onnx_file)
    found = locate(target, resolve_cache(cache_dir))
    if found is None:
        raise ModelUnavailable(f"{target.label} is not cached; run `rerank models pull {target.label}`")
    typer.echo(str(found.directory))


@models_app.command()
def rm(names: Annotated[list[str], typer.Argument(metavar="NAME", help="Registry names or hub repo ids.")],
       cache_dir: CacheDir = None, quiet: Quiet = False) -> None:
    """Remove models (every revision and variant) from the cache to free the disk.

    \\b
    Example:
      rerank models rm BAAI/bge-reranker-base
    """
    from ..store.hub import cache_dir as resolve_cache
    from ..store.hub import remove, target_for

    cache = resolve_cache(cache_dir)
    for name in names:
        target = target_for(name)
        freed = remove(target, cache)
        done = f"removed {target.label} ({freed / 1e6:.1f} MB freed)" if freed else f"{target.label} was not cached"
        _say(quiet, done)


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        err_console().print(f"rerank: {message}", markup=False, highlight=False, soft_wrap=True)


@models_app.command()
def quantize(name: Name, onnx_file: OnnxFile = None, revision: Revision = None, cache_dir: CacheDir = None,
             quiet: Quiet = False) -> None:
    """Make an int8 copy of a model (pulled or local) tuned for CPUs with VNNI, saved once beside its files.

    Use it with `--variant local-int8`; it is about 1.7x faster than fp32 on AVX-512 VNNI CPUs
    (see the README's benchmark), with scores close to but not equal to fp32.

    \\b
    Example:
      rerank models quantize Xenova/ms-marco-MiniLM-L-6-v2
      rerank rerank -m Xenova/ms-marco-MiniLM-L-6-v2 --variant local-int8 -q "..." docs.jsonl
    """
    from ..store.hub import resolve
    from ..store.quantize import quantize as make_int8
    from ..store.registry import local_int8_path

    with download_progress(quiet) as progress:
        base = resolve(name, onnx_file=onnx_file, revision=revision, cache=cache_dir, progress=progress)
    target = base.onnx.parent / local_int8_path(base.onnx.name)
    existed = target.is_file()
    make_int8(base.onnx, target)
    _say(quiet, f"{name}: int8 copy {'already at' if existed else 'written to'} {target} (use --variant local-int8)")
