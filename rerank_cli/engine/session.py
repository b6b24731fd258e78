"""The onnxruntime session: padded input arrays -> one logit per pair.

All dtype conversions live here. token_type_ids is fed only when the graph declares it:
XLM-RoBERTa exports have no such input and onnxruntime rejects unknown inputs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import ArgumentTypeError, ModelUnavailable, UsageError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .openvino import Precision

# Short names users type -> onnxruntime provider names. Others work as `<name>ExecutionProvider`.
_SHORT = {
    "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider", "openvino": "OpenVINOExecutionProvider", "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider", "directml": "DmlExecutionProvider", "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider", "qnn": "QNNExecutionProvider", "xnnpack": "XnnpackExecutionProvider",
    "cann": "CANNExecutionProvider", "azure": "AzureExecutionProvider", "webgpu": "WebGpuExecutionProvider",
}
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
IntType = type[np.int64] | type[np.int32]
_INT_TYPES: dict[str, IntType] = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
# onnxruntime's intra-op pool: threads beyond the cores only contend, and each costs a stack; a
# thousand-odd threads take gigabytes and make the process deaf to SIGTERM. 8 per core leaves room
# for oversubscription experiments; os.cpu_count() (not the affinity mask) so that a container
# pinned to fewer cores than its host still accepts what the host could run.
THREADS_PER_CORE = 8


def max_threads() -> int:
    """The most intra-op threads a session accepts: 8 per CPU core."""
    return THREADS_PER_CORE * (os.cpu_count() or 1)


def short_name(provider: str) -> str:
    """`CUDAExecutionProvider` -> `cuda` (the name users type)."""
    for short, full in _SHORT.items():
        if full == provider:
            return short
    return provider.removesuffix("ExecutionProvider").lower()


def available_providers() -> list[str]:
    """Short names of the execution providers this installation offers: onnxruntime's, and `openvino`
    where the openvino runtime is installed."""
    import onnxruntime

    from .openvino import installed

    names = [short_name(p) for p in onnxruntime.get_available_providers()]
    return names + ["openvino"] if installed() and "openvino" not in names else names


def resolve_provider(name: str | None) -> str:
    """Map a short or full provider name to onnxruntime's, or fail listing what is available."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if name is None:
        return "CPUExecutionProvider"
    wanted = _SHORT.get(name.lower(), name)
    for full in available:
        if full.lower() in (wanted.lower(), f"{name.lower()}executionprovider"):
            return full
    choices = ", ".join(available_providers())
    raise UsageError(f"execution provider {name!r} is not available in this onnxruntime build "
                     f"(available: {choices}); install the onnxruntime package built for it, e.g. onnxruntime-gpu")


class Session:
    """One loaded ONNX cross-encoder on one execution provider."""

    def __init__(self, onnx_path: Path, provider: str | None = None, threads: int | None = None,
                 provider_options: dict[str, str] | None = None) -> None:
        import onnxruntime
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        check_threads(threads)
        chosen = resolve_provider(provider)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Length-sorted batches change shape every call, so a memory pattern is never reused.
        options.enable_mem_pattern = False
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        # onnxruntime's own log goes to stderr raw, even for errors we report ourselves: silence it.
        options.log_severity_level = 4
        self._run_options = onnxruntime.RunOptions()
        self._run_options.log_severity_level = 4
        self._run_errors: tuple[type[Exception], ...] = (ort_errors.Fail, ort_errors.InvalidArgument,
                                                         ort_errors.RuntimeException, ort_errors.EPFail,
                                                         ort_errors.NotImplemented)
        providers = [chosen] + (["CPUExecutionProvider"] if chosen != "CPUExecutionProvider" else [])
        load_errors = (ort_errors.Fail, ort_errors.InvalidProtobuf, ort_errors.InvalidGraph,
                       ort_errors.NoSuchFile, ort_errors.InvalidArgument, ort_errors.RuntimeException)
        try:
            if chosen == "CPUExecutionProvider":
                self._session = _cached_session(onnx_path, options, providers, load_errors)
            else:
                self._session = onnxruntime.InferenceSession(
                    str(onnx_path), options, providers=providers,
                    provider_options=[provider_options or {}] + [{}] * (len(providers) - 1))
        except load_errors as exc:
            raise ModelUnavailable(f"{onnx_path}: onnxruntime cannot load it ({_first_line(exc)}); "
                                   "re-download the model or check the file") from exc
        self.provider = short_name(self._session.get_providers()[0])
        self.input_names, self._dtypes = checked_inputs(onnx_path, {i.name: i.type for i in self._session.get_inputs()})
        output = self._session.get_outputs()[0]
        self._output = output.name
        width = output.shape[-1] if len(output.shape) == 2 else 1
        # The label count when the graph states it (a symbolic width is checked on the first batch).
        self.labels = checked_labels(onnx_path, width if isinstance(width, int) else None)

    @property
    def wants_token_types(self) -> bool:
        """Whether the graph declares token_type_ids (BERT-style) or not (XLM-RoBERTa-style)."""
        return "token_type_ids" in self.input_names

    def run(self, arrays: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """Score one padded batch: float32 logits, one row per pair, one column per label."""
        feed = {k: v.astype(self._dtypes[k], copy=False) for k, v in arrays.items() if k in self._dtypes}
        try:
            (logits,) = self._session.run([self._output], feed, self._run_options)
        except self._run_errors as exc:
            raise batch_failure("onnxruntime", arrays, _first_line(exc)) from exc
        logits = np.asarray(logits, dtype=np.float32)
        return logits.reshape(len(logits), -1)


class ScoringSession(Protocol):
    """What the engine needs of a loaded model: onnxruntime's `Session` or openvino.py's `OpenVINOSession`."""

    provider: str
    input_names: frozenset[str]
    labels: int | None

    @property
    def wants_token_types(self) -> bool: ...

    def run(self, arrays: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]: ...


def open_session(onnx_path: Path, provider: str | None, threads: int | None, precision: Precision) -> ScoringSession:
    """The session for a provider and precision (checked by `check_precision`): onnxruntime's, or OpenVINO's.

    For `openvino` the `openvino` package comes first where installed: it is the path the tests cover, and
    it takes a precision; onnxruntime's OpenVINO provider (onnxruntime-openvino builds) runs fp32 otherwise.
    """
    from . import openvino

    if not _is_openvino(provider):
        return Session(onnx_path, provider, threads)
    if openvino.installed():
        return openvino.OpenVINOSession(onnx_path, threads, precision)
    if precision is not openvino.Precision.fp32 or "OpenVINOExecutionProvider" not in _available():
        raise UsageError(f"provider 'openvino' needs OpenVINO: {openvino.INSTALL_HINT}", param="provider")
    # ACCURACY keeps the model's own fp32: OpenVINO's CPU plugin picks bf16 on BF16 CPUs otherwise.
    options = {"device_type": "CPU", "precision": "ACCURACY"}
    if threads is not None:
        options["num_of_threads"] = str(threads)
    return Session(onnx_path, provider, threads, options)


def check_precision(provider: Any, precision: Any) -> Precision:
    """The precision, checked against the provider before any file is read: bf16 needs OpenVINO."""
    from .openvino import INSTALL_HINT, Precision, precision_choice

    chosen = precision_choice(precision)
    if chosen is not Precision.fp32 and not _is_openvino(provider):
        raise UsageError(f"precision={chosen.value!r} needs the OpenVINO provider (--provider openvino; "
                         f"{INSTALL_HINT}): onnxruntime's {provider or 'cpu'} provider runs fp32 here "
                         "(its CPU provider has no BF16 MatMul)",
                         param="precision")
    return chosen


def _is_openvino(provider: Any) -> bool:
    return isinstance(provider, str) and _SHORT.get(provider.lower(), provider) == "OpenVINOExecutionProvider"


def _available() -> list[str]:
    import onnxruntime

    return onnxruntime.get_available_providers()


def checked_inputs(onnx_path: Path, declared: dict[str, str]) -> tuple[frozenset[str], dict[str, IntType]]:
    """(the graph's input names, the integer type to feed each), or ModelUnavailable if not a cross-encoder's.

    `declared` maps each input name to its ONNX type string, `tensor(int64)`.
    """
    names = frozenset(declared)
    unknown = sorted(names.difference(KNOWN_INPUTS))
    if unknown or "input_ids" not in names:
        raise ModelUnavailable(f"{onnx_path}: graph inputs {sorted(names)} are not a "
                               f"cross-encoder's ({', '.join(KNOWN_INPUTS)})")
    # Feed each input the integer type the graph declares (some exporters use int32).
    odd = [f"{name}: {kind}" for name, kind in declared.items() if kind not in _INT_TYPES]
    if odd:
        raise ModelUnavailable(f"{onnx_path}: graph inputs must be int64 or int32 tensors ({', '.join(odd)})")
    return names, {name: _INT_TYPES[kind] for name, kind in declared.items()}


def checked_labels(onnx_path: Path, labels: int | None) -> int | None:
    """The label count a graph states (None: symbolic), or ModelUnavailable for more than two."""
    if labels is not None and labels > 2:
        raise ModelUnavailable(f"{onnx_path}: the model outputs {labels} values per pair; rerank scores "
                               "models with one relevance logit or two ([irrelevant, relevant])")
    return labels


def batch_failure(runtime: str, arrays: dict[str, NDArray[np.int64]], reason: str) -> ModelUnavailable:
    """The error for a batch the runtime could not score, naming its size and the max_length way out."""
    rows, width = arrays["input_ids"].shape
    return ModelUnavailable(f"{runtime} failed on a batch of {rows} pairs of up to {width} tokens ({reason}); "
                            "if the model cannot take that many tokens, pass a smaller max_length=N",
                            param="max_length")


def check_threads(threads: Any) -> None:
    """Reject a thread count that is not an int from 1 to `max_threads()` (None: onnxruntime's choice)."""
    if threads is None:
        return
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool):
        raise ArgumentTypeError(f"threads must be an int or None, not {type(threads).__name__}")
    if threads < 1:
        raise UsageError(f"threads={threads} is too few: use 1 or more", param="threads")
    if threads > max_threads():
        raise UsageError(f"threads={threads} is too many for {os.cpu_count()} CPU cores: use at most "
                         f"{max_threads()} ({THREADS_PER_CORE} per core)", param="threads")


def graph_positions(onnx_path: Path) -> tuple[int, bool] | None:
    """(rows of the graph's position-embedding table, whether it numbers positions from the padding).

    Read from the initializers' shapes (weights stay on disk); None when no table is named so
    (rotary or ALiBi models have none). A CumSum marks RoBERTa-style positions counted from padding.
    """
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError; onnxruntime will name the problem
        raise ModelUnavailable(f"{onnx_path}: not a readable ONNX graph ({_first_line(exc)}); "
                               "re-download the model or check the file") from exc
    rows = [t.dims[0] for t in model.graph.initializer if "position_embeddings" in t.name and len(t.dims) == 2]
    if not rows:
        return None
    return int(min(rows)), any(node.op_type == "CumSum" for node in model.graph.node)


# Graphs past this size are loaded as they are: the saved copy would double a large model's disk use,
# and protobuf cannot hold a graph of 2 GB or more in one file.
_CACHE_LIMIT = 1 << 30


def derived_cache(kind: str) -> Path:
    """Where files rerank derives from a model are kept between runs (`graphs`: onnxruntime's optimized
    graphs; `openvino`: OpenVINO's compiled models): $RERANK_HOME/KIND, else $XDG_CACHE_HOME/rerank/KIND
    (~/.cache/rerank/KIND). Deleting it costs only the time to rebuild them."""
    home = os.environ.get("RERANK_HOME")
    if home:
        return Path(home).expanduser() / kind
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "rerank" / kind


def graph_cache_dir() -> Path:
    """Where onnxruntime's optimized graphs are kept (see `derived_cache`)."""
    return derived_cache("graphs")


def cached_graph(onnx_path: Path) -> Path | None:
    """The path of `onnx_path`'s optimized graph in the cache, keyed by the file's identity (path, size,
    modification time) and the onnxruntime version; None for graphs too large to copy.

    Each entry is a folder of two files: the graph, and its weights as external data beside it, which
    onnxruntime maps into memory instead of parsing them out of the graph (measured on MiniLM-L6: session
    creation 0.06 s instead of 0.19 s, 98 MB resident after it instead of 172 MB).
    """
    import hashlib

    import onnxruntime

    try:
        stat = onnx_path.stat()
        if stat.st_size >= _CACHE_LIMIT or any(onnx_path.parent.glob(onnx_path.name + "*data")):
            return None  # external weights: a saved copy would have to copy them too
    except OSError:
        return None
    where = str(onnx_path.resolve())
    identity = f"{where}|{stat.st_size}|{stat.st_mtime_ns}|{onnxruntime.__version__}"
    digest = hashlib.sha256
    entry = f"{onnx_path.stem}-{digest(where.encode()).hexdigest()[:12]}-{digest(identity.encode()).hexdigest()[:12]}"
    return graph_cache_dir() / entry / _GRAPH


# The names inside a cache entry: the graph, and the weights it names as its external data.
_GRAPH = "model.onnx"
_WEIGHTS = "model.onnx.data"
_SOURCE = "source.txt"  # the model file the entry was made from (entries of deleted models are pruned)


def _cached_session(onnx_path: Path, options: Any, providers: list[str], errors: tuple[type[Exception], ...]) -> Any:
    """A CPU session from the graph as onnxruntime's extended optimizations left it, saved on first load.

    Loading the saved graph skips the fusion passes and maps the weights from their own file. It is
    saved at the extended level, which has no layout changes specific to this CPU, and the full level
    still runs on it at load. Any failure to write the cache only means the next load optimizes again.
    """
    import onnxruntime

    cached = cached_graph(onnx_path)
    if cached is not None:
        for _ in range(2):  # a damaged entry is rebuilt once
            if not cached.is_file():
                _save_optimized(onnx_path, cached, options, providers, errors)
                if not cached.is_file():  # the cache cannot be written
                    break
            try:
                return onnxruntime.InferenceSession(str(cached), options, providers=providers)
            except errors:
                shutil.rmtree(cached.parent, ignore_errors=True)
    return onnxruntime.InferenceSession(str(onnx_path), options, providers=providers)


def _save_optimized(onnx_path: Path, cached: Path, options: Any, providers: list[str],
                    errors: tuple[type[Exception], ...]) -> None:
    """Write the cache entry for `onnx_path`: built in a folder of its own, then renamed into place, so a
    concurrent load sees a whole entry or none; older entries of the same model file are removed."""
    import onnxruntime

    entry = cached.parent
    partial = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    failures: tuple[type[Exception], ...] = (OSError, *errors)
    try:
        partial.mkdir(parents=True)
        saving = onnxruntime.SessionOptions()
        saving.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        saving.log_severity_level = options.log_severity_level
        saving.intra_op_num_threads = 1
        saving.optimized_model_filepath = str(partial / _GRAPH)
        saving.add_session_config_entry("session.optimized_model_external_initializers_file_name", _WEIGHTS)
        saving.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        onnxruntime.InferenceSession(str(onnx_path), saving, providers=providers)
        if not (partial / _GRAPH).is_file():
            return
        (partial / _SOURCE).write_text(str(onnx_path.resolve()) + "\n", encoding="utf-8")
        try:
            os.rename(partial, entry)
        except OSError:  # another process saved it first: keep theirs
            if not cached.is_file():
                raise
        _prune(entry)
    except failures:  # a cache that cannot be written: this load and the next optimize again
        pass
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _prune(entry: Path) -> None:
    """Remove the entries that will never be loaded again: older ones of the same model file (changed
    since, or made by another onnxruntime), the single-file entries of rerank 0.2 pre-releases, and
    entries whose model file is gone (a deleted model, a moved folder, a temporary directory)."""
    same_model = entry.name.rsplit("-", 1)[0] + "-"
    for other in entry.parent.iterdir():
        if other == entry or other.name.startswith("."):  # another process's entry being built
            continue
        if other.is_file() and other.name.startswith(same_model):
            other.unlink()
        elif other.is_dir():
            try:
                source = (other / _SOURCE).read_text(encoding="utf-8").strip()
            except OSError:  # no source recorded: only the entries of this model can be judged
                source = None
            if other.name.startswith(same_model) or (source and not Path(source).exists()):
                shutil.rmtree(other, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
