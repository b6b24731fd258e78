"""The model store: resolve a model argument to files on disk, downloading through huggingface_hub.

Files live in huggingface_hub's standard cache, shared with other Hugging Face tools. A pull
downloads every file at one resolved commit and only then points `refs/<revision>` at it, so the
ref doubles as the "installed" record: a cut or interrupted pull never yields a half model, and a
cached model is found by reading that ref (zero network requests). This module never prints: it
returns paths or raises ModelUnavailable, and reports download progress through a callback.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shlex
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from ..errors import ModelUnavailable, UsageError
from .registry import (
    EXTERNAL_DATA_SUFFIXES,
    INT8,
    LOCAL_INT8,
    ONNX_CANDIDATES,
    OPTIONAL_FILES,
    REQUIRED_FILES,
    ModelFiles,
    ModelSpec,
    check_choice,
    check_name,
    closest_names,
    default_onnx,
    fallback_note,
    find_spec,
    int8_note,
    is_repo_id,
    local_int8_path,
    local_variant,
    variant_file,
)

# on_file(name, total_bytes) -> advance(nbytes): how a caller watches a download (None: silently).
Progress = Callable[[str, "int | None"], Callable[[int], None]]
_SHA = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Target:
    """A model to fetch from the Hub: repo, revision and ONNX file (None: find it in the repo)."""

    repo: str
    revision: str = "main"
    onnx_file: str | None = None
    onnx_data: str | None = None
    spec: ModelSpec | None = None
    local_int8: bool = False  # --variant local-int8: the copy `rerank models quantize` built locally
    variant: str | None = None  # as the user gave it, for the commands we suggest
    chosen_file: bool = False  # onnx_file came from --onnx-file (not from the registry or a variant)
    note: str | None = None  # what was chosen for the user, passed on in ModelFiles.note

    @property
    def label(self) -> str:
        """The name users typed, for messages."""
        return self.spec.name if self.spec else self.repo

    def choices(self) -> list[tuple[str, str]]:
        """(option, value) for each choice that differs from the default: variant, revision, ONNX file."""
        default_revision = self.spec.revision if self.spec else "main"
        given = (("variant", self.variant), ("revision", self.revision if self.revision != default_revision else None),
                 ("onnx-file", self.onnx_file if self.chosen_file else None))
        return [(option, value) for option, value in given if value]

    def command(self, verb: str = "pull", cache: str | os.PathLike[str] | None = None) -> str:
        """The `rerank models VERB ...` command that fetches (or, for quantize, builds) exactly this target."""
        words = ["rerank", "models", verb, self.label]
        for option, value in self.choices():
            if not (option == "variant" and verb == "quantize"):  # quantize makes the local-int8 variant
                words += [f"--{option}", value]
        if cache is not None:
            words += ["--cache-dir", str(cache)]
        return " ".join(shlex.quote(w) for w in words)


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--cache-dir, else RERANK_CACHE_DIR, else huggingface_hub's own (HF_HUB_CACHE, HF_HOME/hub, ~/.cache)."""
    for value in (explicit, os.environ.get("RERANK_CACHE_DIR"), os.environ.get("HF_HUB_CACHE")):
        if value:
            return Path(value).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def offline_requested(flag: bool = False) -> bool:
    """--offline or HF_HUB_OFFLINE (read now: huggingface_hub reads it only once, at import)."""
    return flag or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def target_for(model: str, *, variant: str | None = None, revision: str | None = None,
               onnx_file: str | None = None) -> Target:
    """Turn a registry name or hub repo id into a Target; unknown bare names suggest registry names."""
    check_name(model)
    if variant and variant.lower() == LOCAL_INT8:
        base = target_for(model, revision=revision, onnx_file=onnx_file)
        return replace(base, local_int8=True, variant=variant)
    check_choice(variant, onnx_file, revision)
    spec = find_spec(model)
    if spec is not None:
        picked, chosen = (None, onnx_file) if onnx_file else spec.pick(variant)
        data = spec.onnx_data if chosen == spec.onnx_file else None
        note = int8_note(picked, chosen) if variant and variant.lower() == INT8 and picked else None
        return Target(spec.repo, revision or spec.revision, chosen, data, spec, variant=variant,
                      chosen_file=bool(onnx_file), note=note)
    if not is_repo_id(model):
        close = closest_names(model)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; see `rerank models list`"
        raise UsageError(f"unknown model {model!r}: not a directory, registry name or hub repo id{hint}")
    named = onnx_file or (variant_file(variant) if variant else None)
    return Target(model, revision or "main", named, variant=variant, chosen_file=bool(onnx_file))


def repo_folder(cache: Path, repo: str) -> Path:
    """huggingface_hub's folder for a model repo inside a cache."""
    return cache / ("models--" + repo.replace("/", "--"))


def locate(target: Target, cache: Path) -> ModelFiles | None:
    """The installed files of a target, read from the cache alone (no network); None if incomplete.

    For --variant local-int8 that is the int8 copy `rerank models quantize` made: None until it exists.
    """
    folder = repo_folder(cache, target.repo)
    sha = target.revision if _SHA.match(target.revision) else _read_ref(folder, target.revision)
    if sha is None:
        return None
    snapshot = folder / "snapshots" / sha
    onnx = target.onnx_file or default_onnx(lambda c: (snapshot / c).is_file())
    needed = [*REQUIRED_FILES, *(f for f in (onnx, target.onnx_data) if f)]
    if onnx is None or not all((snapshot / f).is_file() for f in needed):
        return None
    if target.local_int8:
        onnx = local_int8_path(onnx)
        if not (snapshot / onnx).is_file():
            return None
    return ModelFiles(snapshot, snapshot / onnx, note=None if target.onnx_file else fallback_note(onnx))


def _read_ref(folder: Path, revision: str) -> str | None:
    try:
        sha = (folder / "refs" / revision).read_text().strip()
    except OSError:
        return None
    return sha if _SHA.match(sha) else None


def resolve(model: str | os.PathLike[str], *, variant: str | None = None, revision: str | None = None,
            onnx_file: str | None = None, cache: str | os.PathLike[str] | None = None, offline: bool = False,
            refresh: bool = False, progress: Progress | None = None) -> ModelFiles:
    """A local directory as it is; a registry name or repo id from the cache, pulling it when missing.

    With `refresh`, a Hub that cannot be reached leaves the cached copy in use: the returned
    ModelFiles then carries a `warning` for the caller to show (this module never prints).
    """
    text = str(model)
    check_name(text)
    path = Path(text).expanduser()
    looks_local = text.startswith((".", "/", "~")) or (os.sep in text and not is_repo_id(text))
    if path.exists() or (looks_local and find_spec(text) is None):
        if revision:
            raise UsageError(f"{path} is a local directory: a revision applies to hub models only")
        return local_variant(path, text, variant, onnx_file)
    target = target_for(text, variant=variant, revision=revision, onnx_file=onnx_file)
    files = _resolve_target(target, cache, offline=offline, refresh=refresh, progress=progress)
    return replace(files, note=target.note) if target.note else files


def _resolve_target(target: Target, cache: str | os.PathLike[str] | None, *, offline: bool, refresh: bool,
                    progress: Progress | None) -> ModelFiles:
    where = cache_dir(cache)
    if refresh and offline_requested(offline):
        why = "--offline" if offline else "HF_HUB_OFFLINE"
        raise UsageError(f"refresh checks the Hub for a newer revision, which {why} forbids: drop one of them")
    found = locate(target, where)
    if target.local_int8:  # a file made here: there is nothing to refresh or download
        return found if found is not None else _missing_local_int8(target, where, cache)
    if found is not None and not refresh:
        return found
    if found is None and offline_requested(offline):
        raise ModelUnavailable(f"{target.label}{describe(target)} is not in the cache ({where}) and rerank is offline; "
                               f"run `{target.command('pull', cache)}` while online, or drop --offline/HF_HUB_OFFLINE")
    try:
        return pull(target, cache=where, progress=progress)
    except ModelUnavailable as err:
        if found is None or not _unreachable(err.__cause__):
            raise
        return replace(found, warning=f"could not check the Hub for a newer revision of {target.label} "
                                      f"({_reason(err.__cause__)}); using the cached copy")


def describe(target: Target) -> str:
    """' (variant quantized, revision v2)': which files of a repo a message is about, when not the default."""
    shown = ", ".join(f"{option.replace('-', ' ')} {value}" for option, value in target.choices())
    return f" ({shown})" if shown else ""


def _missing_local_int8(target: Target, cache: Path, explicit: str | os.PathLike[str] | None) -> NoReturn:
    """Explain a missing --variant local-int8 copy: it is built by `rerank models quantize`, never downloaded."""
    base = replace(target, local_int8=False)
    also = "" if locate(base, cache) else " (the model is not cached either; quantize pulls it first)"
    raise ModelUnavailable(f"{target.label} has no local int8 copy yet{also}; make it once with "
                           f"`{target.command('quantize', explicit)}`")


def pull(target: Target, *, cache: Path, progress: Progress | None = None) -> ModelFiles:
    """Download every file of a target at one commit, then mark it installed. Safe to repeat or run twice at once."""
    from huggingface_hub import HfApi, hf_hub_download

    if target.local_int8:
        raise UsageError(f"{target.label}: the local-int8 variant is made on this machine, not downloaded; "
                         f"make it with `{target.command('quantize')}`")
    endpoint = os.environ.get("HF_ENDPOINT") or None  # read now, not at huggingface_hub's import
    named = target.onnx_file is not None
    with _hub_errors(target, cache), quiet_logger("huggingface_hub"):
        info = HfApi(endpoint=endpoint).model_info(target.repo, revision=target.revision, files_metadata=True)
        sha = str(info.sha)
        sizes = {s.rfilename: s.size for s in (info.siblings or [])}
        target = _complete(target, sizes)
        files = [f for f in (*REQUIRED_FILES, *OPTIONAL_FILES, target.onnx_file, target.onnx_data)
                 if f and (f in sizes or f in REQUIRED_FILES)]
        for name in files:
            if name not in sizes:
                raise ModelUnavailable(f"{target.label}: the repo has no {name}, so it is not a usable reranker")
            hf_hub_download(target.repo, name, revision=sha, cache_dir=str(cache), endpoint=endpoint,
                            tqdm_class=_bar_class(name, progress))  # type: ignore[arg-type]
    pinned = replace(target, revision=sha)
    found = locate(pinned, cache)
    if found is None:
        raise ModelUnavailable(f"{target.label}: download finished but files are missing from {cache}; "
                               "run the pull again")
    if not _SHA.match(target.revision):
        _write_ref(repo_folder(cache, target.repo), target.revision, sha)
    return found if named or target.onnx_file is None else replace(found, note=fallback_note(target.onnx_file))


@contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Silence a library's log and warnings for one call: failures reach the user as our one-line error."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=re.escape(name) if name else "")
            yield
    finally:
        logger.setLevel(level)


def _complete(target: Target, sizes: dict[str, int | None]) -> Target:
    """Fill in the ONNX file (and its external-data file) from the repo listing; explain what is missing."""
    onnx = target.onnx_file or default_onnx(sizes.__contains__)
    if onnx is None or onnx not in sizes:
        found = sorted(f for f in sizes if f.endswith(".onnx"))
        wanted = target.onnx_file or " or ".join(ONNX_CANDIDATES)
        listing = f"; its .onnx files: {', '.join(found)} (choose one with onnx_file=PATH)" if found else \
            "; it has no .onnx file at all (export one, e.g. with optimum)"
        raise ModelUnavailable(f"{target.label}: no {wanted} in the repo{listing}", param="onnx_file")
    data = target.onnx_data or next((onnx + s for s in EXTERNAL_DATA_SUFFIXES if onnx + s in sizes), None)
    return replace(target, onnx_file=onnx, onnx_data=data)


def _write_ref(folder: Path, revision: str, sha: str) -> None:
    """Point refs/<revision> at sha atomically (temp file + rename), as huggingface_hub does."""
    ref = folder / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=ref.parent, prefix=".ref-")
    with os.fdopen(fd, "w") as fh:
        fh.write(sha)
    os.replace(tmp, ref)


def remove(target: Target, cache: Path) -> int:
    """Delete a repo (every revision and variant) from the cache; returns the bytes freed (0: not cached)."""
    folder = repo_folder(cache, target.repo)
    if not folder.is_dir():
        return 0
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(folder)
    shutil.rmtree(cache / ".locks" / folder.name, ignore_errors=True)
    return size


def _bar_class(name: str, progress: Progress | None) -> type:
    """A tqdm-shaped class huggingface_hub can drive, forwarding byte counts to `progress`."""

    class Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any) -> None:
            self.advance = progress(name, total) if progress else None
            if initial and self.advance:
                self.advance(initial)

        def update(self, n: float | None = 1) -> None:
            if self.advance and n:
                self.advance(int(n))

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def close(self) -> None:
            return None

        def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            return None

    return Bar


@contextmanager
def _hub_errors(target: Target, cache: Path) -> Iterator[None]:
    """Turn huggingface_hub and transport exceptions into one-line ModelUnavailable errors with a fix."""
    try:
        yield
    except ModelUnavailable:
        raise
    except Exception as exc:
        message = _explain(exc, target, cache)
        if message is None:
            raise  # not understood: a bug to report, so it keeps its traceback
        raise ModelUnavailable(message) from exc


def _explain(exc: BaseException, target: Target, cache: Path) -> str | None:
    from huggingface_hub import errors as hf

    label = target.label
    if isinstance(exc, hf.RepositoryNotFoundError):
        close = closest_names(label)
        hint = f"; did you mean {' or '.join(close)}?" if close and target.spec is None else ""
        return f"{target.repo}: repository not found on the Hub (check the name; private repos need HF_TOKEN){hint}"
    if isinstance(exc, hf.RevisionNotFoundError):
        return f"{target.repo}: revision {target.revision!r} not found on the Hub"
    if isinstance(exc, hf.EntryNotFoundError):
        return f"{target.repo}: a file disappeared from the repo during the pull ({exc}); run the pull again"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on the device holding {cache}; free some space or choose another --cache-dir"
    if _unreachable(exc):
        return (f"cannot reach the Hugging Face Hub to get {label} ({_reason(exc)}); pull it where the Hub is "
                f"reachable with `{target.command('pull')}` (copy the cache or set HF_HOME), then run with --offline")
    if isinstance(exc, hf.HfHubHTTPError):
        return f"the Hub refused {target.repo}: {str(exc).splitlines()[0]}"
    return None


def _unreachable(exc: BaseException | None) -> bool:
    """Whether a failure means the Hub could not be reached (as opposed to a refusal or a missing repo)."""
    from huggingface_hub import errors as hf

    if exc is None:
        return False
    return isinstance(exc, (hf.OfflineModeIsEnabled, hf.LocalEntryNotFoundError)) or _is_transport_error(exc)


def _reason(exc: BaseException | None) -> str:
    """The first line of an exception's message, or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_transport_error(exc: BaseException) -> bool:
    """Connection-level failures from whichever HTTP stack huggingface_hub uses (httpx-style or OSError)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(c.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")
               for c in type(exc).__mro__)
