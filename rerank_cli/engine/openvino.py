"""The OpenVINO session: the same ONNX file and interface as session.py's, run by the `openvino` runtime.

Used for `provider="openvino"` when onnxruntime's own OpenVINO provider is not in the installed
build (the PyPI `onnxruntime` has none). OpenVINO reads the ONNX graph itself, external data
included, and keeps its shapes dynamic, so length-sorted batches of any width run as they come.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelUnavailable, UsageError

if TYPE_CHECKING:  # numpy is imported where arrays are fed: the CLI imports this module for its enum
    import numpy as np
    from numpy.typing import NDArray

INSTALL_HINT = "pip install 'rerank-cli[openvino]'"


class Precision(str, Enum):
    """The arithmetic the model runs in: fp32 (exact), or bf16 (faster where the CPU has BF16 instructions)."""

    fp32 = "fp32"
    bf16 = "bf16"


def precision_choice(value: Any) -> Precision:
    """A Precision from its name, or a usage error listing the choices."""
    try:
        return Precision(value)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in Precision)
        raise UsageError(f"precision {value!r} is not one of {choices}", param="precision") from None


def installed() -> bool:
    """Whether the `openvino` runtime can be imported (found without importing it: that takes ~0.5 s)."""
    import importlib.util

    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):  # ValueError: a module blocked with sys.modules["openvino"] = None
        return False


def cache_dir() -> Path:
    """Where compiled models are kept between runs (see session.derived_cache)."""
    from .session import derived_cache

    return derived_cache("openvino")


class OpenVINOSession:
    """One ONNX cross-encoder compiled by OpenVINO for the CPU, in fp32 or bf16."""

    provider = "openvino"

    def __init__(self, onnx_path: Path, threads: int | None = None, precision: Precision = Precision.fp32) -> None:
        from .session import checked_inputs, checked_labels

        ov = _import()
        core = ov.Core()
        capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if precision is Precision.bf16 and "BF16" not in capabilities:
            raise UsageError("precision='bf16' needs a CPU with BF16 instructions (AVX-512 BF16 or AMX); this one "
                             f"offers {', '.join(capabilities)}: use precision='fp32'", param="precision")
        # Always state the precision: OpenVINO's CPU plugin runs fp32 models in bf16 by default on
        # BF16-capable CPUs, which would silently break exactness. LATENCY: one stream using every
        # thread on each call, as the engine makes one call at a time.
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "bf16" if precision is Precision.bf16 else "f32",
                                  "PERFORMANCE_HINT": "LATENCY"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        cache = _usable(cache_dir())
        if cache is not None:
            config["CACHE_DIR"] = str(cache)
        # Ask the ONNX frontend first: given a file it cannot parse, OpenVINO tries every other
        # frontend, and TensorFlow's writes its own errors to stderr.
        if not ov.frontend.FrontEndManager().load_by_framework("onnx").supported(str(onnx_path)):
            raise ModelUnavailable(f"{onnx_path}: OpenVINO cannot load it (not an ONNX model); "
                                   "re-download the model or check the file")
        try:
            # Compiling from the path (not a read Model) lets a cached blob skip reading the graph.
            self._model = core.compile_model(str(onnx_path), "CPU", config)
        except RuntimeError as exc:
            raise ModelUnavailable(f"{onnx_path}: OpenVINO cannot load it ({_last_line(exc)}); "
                                   "re-download the model or check the file") from exc
        declared = {p.get_any_name(): _ONNX_TYPES.get(p.get_element_type().get_type_name(), "?")
                    for p in self._model.inputs}
        self.input_names, self._dtypes = checked_inputs(onnx_path, declared)
        self.precision = precision
        self._request = self._model.create_infer_request()
        self.labels = checked_labels(onnx_path, _labels(self._model.outputs[0].get_partial_shape()))

    @property
    def wants_token_types(self) -> bool:
        """Whether the graph declares token_type_ids (BERT-style) or not (XLM-RoBERTa-style)."""
        return "token_type_ids" in self.input_names

    def run(self, arrays: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """Score one padded batch: float32 logits, one row per pair, one column per label."""
        import numpy as np

        feed = {k: np.ascontiguousarray(v, dtype=self._dtypes[k]) for k, v in arrays.items() if k in self._dtypes}
        try:
            result = self._request.infer(feed)
        except RuntimeError as exc:
            from .session import batch_failure

            raise batch_failure("OpenVINO", arrays, _last_line(exc)) from exc
        logits = np.asarray(result[0], dtype=np.float32)
        return logits.reshape(len(logits), -1)


# OpenVINO element type names -> the ONNX type strings session.py checks.
_ONNX_TYPES = {"i64": "tensor(int64)", "i32": "tensor(int32)"}


def _labels(shape: Any) -> int | None:
    """The label count when the graph states it, as session.py reads it (a symbolic width: None)."""
    if shape.rank.is_dynamic:
        return None
    if shape.rank.get_length() != 2:
        return 1
    return shape[1].get_length() if shape[1].is_static else None


def _import() -> Any:
    """`import openvino` without its telemetry.

    Importing openvino imports its converter, which sends a usage event to Google Analytics through
    openvino-telemetry unless `~/intel/openvino_telemetry` opts out or CI=true; it does so from a forked
    process that can outlive rerank holding its stderr (measured: a child deadlocked in getaddrinfo with
    no network, and a pipeline reading rerank's stderr hung). With the module hidden, openvino's own
    fallback, a stub that sends nothing, is used. The entry is removed again, so code of the caller's
    that imports openvino_telemetry later still can.
    """
    hidden = "openvino_telemetry" not in sys.modules
    if hidden:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # importing it raises ImportError
    try:
        import openvino
    except ImportError as exc:
        raise UsageError(f"provider 'openvino' needs OpenVINO: {INSTALL_HINT} (or an onnxruntime build with "
                         "its OpenVINO provider, onnxruntime-openvino)", param="provider") from exc
    finally:
        if hidden and "openvino_telemetry" in sys.modules and sys.modules["openvino_telemetry"] is None:
            del sys.modules["openvino_telemetry"]
    return openvino


def _usable(directory: Path) -> Path | None:
    """The cache directory, created if need be; None (compile every time) where it cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return directory if os.access(directory, os.W_OK) else None


def _last_line(exc: BaseException) -> str:
    """OpenVINO's own message: its exceptions open with a trace of source locations, the cause comes last."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
