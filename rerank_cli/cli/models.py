"""`rerank models ...`: list the registry, pull models into the cache, show their path, remove, quantize."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import ModelUnavailable, UsageError
from ..store.registry import DEFAULT_MODEL, REGISTRY, ModelSpec
from .console import download_progress, err_console
from .options import Command, complete_model

models_app = typer.Typer(
    help="List, download (pull), locate (path), remove (rm) and quantize models in the Hugging Face cache.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Names = Annotated[Optional[list[str]], typer.Argument(metavar="NAME", show_default=False,
                                                      autocompletion=complete_model,
                                                      help="Registry names or hub repo ids.")]
Name = Annotated[str, typer.Argument(metavar="NAME", autocompletion=complete_model,
                                     help="A registry name or hub repo id.")]
Variant = Annotated[Optional[str], typer.Option("--variant", metavar="NAME", show_default=False,
                                               help="A published variant: quantized, int8, fp16, ...")]
Revision = Annotated[Optional[str], typer.Option("--revision", metavar="REV", show_default=False,
                                                help="Hub branch, tag or commit [default: main].")]
OnnxFile = Annotated[Optional[str], typer.Option(
    "--onnx-file", metavar="PATH", show_default=False,
    help="ONNX file in the repo [default: onnx/model.onnx, else model.onnx].")]
CacheDir = Annotated[Optional[str], typer.Option("--cache-dir", metavar="DIR", envvar="RERANK_CACHE_DIR",
                                                show_default=False,
                                                help="Model cache [default: huggingface_hub's, from HF_HOME].")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars or messages on stderr.")]


def _variants(spec: ModelSpec, cache: Path) -> list[str]:
    """The variants of a registry model in the cache: default, published ones, and a local int8 copy."""
    from ..store.hub import locate, target_for
    from ..store.registry import LOCAL_INT8

    names = [None, *(v for v, _ in spec.variants), LOCAL_INT8]
    return [v or "default" for v in names if locate(target_for(spec.name, variant=v), cache) is not None]


@models_app.command("list", cls=Command)
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts, with every field (languages, "
                                          "files, variants, description).")] = False,
    cache_dir: CacheDir = None,
) -> None:
    """List the built-in models: name, size, licence, max length and which variants are cached.

    \b
    Examples:
      rerank models list
      rerank models list --json | jq -r '.[] | select(.cached) | .name'
    """
    from ..store.hub import cache_dir as resolve_cache

    cache = resolve_cache(cache_dir)
    rows = [_row(spec, _variants(spec, cache)) for spec in REGISTRY]
    if as_json:
        import orjson

        _emit(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        _emit(_table(rows).encode())


def _row(spec: ModelSpec, cached: list[str]) -> dict[str, Any]:
    return {
        "name": spec.name, "repo": spec.repo, "revision": spec.revision, "onnx_file": spec.onnx_file,
        "onnx_data": spec.onnx_data, "size_gb": spec.size_gb, "license": spec.license,
        "non_commercial": "-nc" in spec.license, "max_length": spec.max_length, "languages": list(spec.languages),
        "variants": dict(spec.variants), "default": spec.name == DEFAULT_MODEL, "cached": "default" in cached,
        "cached_variants": cached, "description": spec.description, "activation": spec.activation,
        "source": spec.source,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    """The table as text, fitted to the terminal (COLUMNS, else 80 when piped): only cached variants wrap.

    Five short columns fit 80 columns with every name whole; the rest of each record is in --json.
    """
    import io

    from rich.console import Console
    from rich.table import Table

    text = io.StringIO()
    width = Console(file=sys.stdout or io.StringIO()).width  # the terminal's, else COLUMNS, else 80
    # At least 80: narrower, rich would drop whole columns; a narrow terminal wraps the lines instead.
    out = Console(file=text, highlight=False, color_system=None, width=max(width, 80))
    table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 1), header_style="")
    table.add_column("name", no_wrap=True)  # identifiers people copy: never folded
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("licence", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("score", no_wrap=True)  # what --activation auto gives: logits or sigmoid probabilities
    table.add_column("cached", overflow="fold")  # 12 columns are left at 80: variant names fit whole
    for r in rows:
        size = f"{r['size_gb']:.1f}G" if r["size_gb"] >= 1 else f"{r['size_gb'] * 1000:.0f}M"
        scores = "logit" if r["activation"] == "none" else "0..1"
        table.add_row(r["name"] + (" *" if r["default"] else ""), size,
                      r["license"].replace("cc-by-nc-4.0", "cc-by-nc"), str(r["max_length"]), scores,
                      ", ".join(r["cached_variants"]) or "no")
    out.print(table, markup=False)
    lines = [line.rstrip() for line in text.getvalue().splitlines()]
    lines += ["* the default model. cc-by-nc: a non-commercial licence. limit: tokens per pair.",
              "score: what --activation auto gives: raw logits, or probabilities (0..1).",
              "Variants: rerank models pull NAME --variant quantized",
              "Every field, for scripts: rerank models list --json"]
    return "\n".join(lines) + "\n"


@models_app.command(cls=Command)
def pull(
    names: Names = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every registry model (CI images).")] = False,
    variant: Variant = None, revision: Revision = None, onnx_file: OnnxFile = None, cache_dir: CacheDir = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Check the hub for a newer revision.")] = False,
    quiet: Quiet = False,
) -> None:
    """Download models into the cache so that later runs work offline (default: the default model).

    \b
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
    for name in chosen:
        _not_a_directory(name, "pull", "it is used where it is; nothing is downloaded")
    targets = [target_for(n, variant=variant, revision=revision, onnx_file=onnx_file) for n in chosen]
    for target in targets:
        if target.local_int8:
            raise UsageError(f"{target.label}: the local-int8 variant is made on this machine, not downloaded; "
                             f"make it with `{target.command('quantize', cache_dir)}`")
        if target.note:
            _say(quiet, target.note)
        found = None if refresh else locate(target, cache)
        if found is None:
            with download_progress(quiet) as progress:
                found = hub_pull(target, cache=cache, progress=progress)
            _say(quiet, f"pulled {target.label} -> {found.directory}")
        else:
            _say(quiet, f"{target.label} is already cached at {found.directory}")


@models_app.command(cls=Command)
def path(name: Name, variant: Variant = None, revision: Revision = None, onnx_file: OnnxFile = None,
         cache_dir: CacheDir = None) -> None:
    """Print the directory holding a cached model's files (for Docker layers and debugging).

    \b
    Example:
      ls "$(rerank models path Xenova/ms-marco-MiniLM-L-6-v2)"
    """
    from ..store.hub import cache_dir as resolve_cache
    from ..store.hub import describe, locate, target_for
    from ..store.registry import check_name, local_variant

    check_name(name)
    if Path(name).expanduser().is_dir():  # a local model directory: its files are where they are
        _emit(os.fsencode(local_variant(Path(name).expanduser(), name, variant, onnx_file).directory) + b"\n")
        return
    target = target_for(name, variant=variant, revision=revision, onnx_file=onnx_file)
    found = locate(target, resolve_cache(cache_dir))
    if found is None:
        fix = target.command("quantize" if target.local_int8 else "pull", cache_dir)
        raise ModelUnavailable(f"{target.label}{describe(target)} is not cached; run `{fix}`")
    _emit(os.fsencode(found.directory) + b"\n")


@models_app.command(cls=Command)
def rm(names: Annotated[list[str], typer.Argument(metavar="NAME", autocompletion=complete_model,
                                                  help="Registry names or hub repo ids.")],
       cache_dir: CacheDir = None, quiet: Quiet = False) -> None:
    """Remove models (every revision and variant) from the cache to free the disk.

    \b
    Example:
      rerank models rm BAAI/bge-reranker-base
    """
    from ..store.hub import cache_dir as resolve_cache
    from ..store.hub import remove, target_for

    cache = resolve_cache(cache_dir)
    for name in names:
        _not_a_directory(name, "rm", "rerank never deletes a directory of yours; remove it yourself")
    for name in names:
        target = target_for(name)
        freed = remove(target, cache)
        done = f"removed {target.label} ({freed / 1e6:.1f} MB freed)" if freed else f"{target.label} was not cached"
        _say(quiet, done)


def _not_a_directory(name: str, verb: str, why: str) -> None:
    """`models pull|rm` act on the Hugging Face cache; a local model directory is a usage error, not a repo id."""
    from ..store.registry import check_name

    check_name(name)
    if Path(name).expanduser().is_dir():
        raise UsageError(f"{name} is a local model directory: `rerank models {verb}` works on hub models; {why}")


def _emit(data: bytes) -> None:
    """Write results to stdout and flush now: a full or closed stream is then exit 74 from the app's funnel."""
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        err_console().print(f"rerank: {message}", markup=False, highlight=False, soft_wrap=True)


@models_app.command(cls=Command)
def quantize(name: Name, onnx_file: OnnxFile = None, revision: Revision = None, cache_dir: CacheDir = None,
             quiet: Quiet = False) -> None:
    """Make an int8 copy of a model (pulled or local) tuned for CPUs with VNNI, saved once beside its files.

    Use it with `--variant local-int8`; it is about 1.7x faster than fp32 on AVX-512 VNNI CPUs
    (see the README's benchmark), with scores close to but not equal to fp32.

    \b
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
