"""The onnxruntime session: padded input arrays -> one logit per pair.

All dtype conversions live here. token_type_ids is fed only when the graph declares it:
XLM-RoBERTa exports have no such input and onnxruntime rejects unknown inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelUnavailable, UsageError

if TYPE_CHECKING:
    from numpy.typing import NDArray

# Short names users type -> onnxruntime provider names. Others work as `<name>ExecutionProvider`.
_SHORT = {
    "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider", "openvino": "OpenVINOExecutionProvider", "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider", "directml": "DmlExecutionProvider", "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider", "qnn": "QNNExecutionProvider", "xnnpack": "XnnpackExecutionProvider",
    "cann": "CANNExecutionProvider", "azure": "AzureExecutionProvider", "webgpu": "WebGpuExecutionProvider",
}
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def short_name(provider: str) -> str:
    """`CUDAExecutionProvider` -> `cuda` (the name users type)."""
    for short, full in _SHORT.items():
        if full == provider:
            return short
    return provider.removesuffix("ExecutionProvider").lower()


def available_providers() -> list[str]:
    """Short names of the execution providers this onnxruntime build offers."""
    import onnxruntime

    return [short_name(p) for p in onnxruntime.get_available_providers()]


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
    choices = ", ".join(short_name(p) for p in available)
    raise UsageError(f"execution provider {name!r} is not available in this onnxruntime build "
                     f"(available: {choices}); install the onnxruntime package built for it, e.g. onnxruntime-gpu")


class Session:
    """One loaded ONNX cross-encoder on one execution provider."""

    def __init__(self, onnx_path: Path, provider: str | None = None, threads: int | None = None) -> None:
        import onnxruntime
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        chosen = resolve_provider(provider)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Length-sorted batches change shape every call, so a memory pattern is never reused.
        options.enable_mem_pattern = False
        if threads is not None:
            if threads < 1:
                raise UsageError(f"--threads {threads}: must be 1 or more")
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # onnxruntime's warnings are not the user's business
        providers = [chosen] + (["CPUExecutionProvider"] if chosen != "CPUExecutionProvider" else [])
        load_errors = (ort_errors.Fail, ort_errors.InvalidProtobuf, ort_errors.InvalidGraph,
                       ort_errors.NoSuchFile, ort_errors.InvalidArgument, ort_errors.RuntimeException)
        try:
            self._session = onnxruntime.InferenceSession(str(onnx_path), options, providers=providers)
        except load_errors as exc:
            raise ModelUnavailable(f"{onnx_path}: onnxruntime cannot load it ({_first_line(exc)}); "
                                   "re-download the model or check the file") from exc
        self.provider = short_name(self._session.get_providers()[0])
        self.input_names = frozenset(i.name for i in self._session.get_inputs())
        unknown = sorted(self.input_names.difference(KNOWN_INPUTS))
        if unknown or "input_ids" not in self.input_names:
            raise ModelUnavailable(f"{onnx_path}: graph inputs {sorted(self.input_names)} are not a "
                                   f"cross-encoder's ({', '.join(KNOWN_INPUTS)})")
        self._output = self._session.get_outputs()[0].name

    @property
    def wants_token_types(self) -> bool:
        """Whether the graph declares token_type_ids (BERT-style) or not (XLM-RoBERTa-style)."""
        return "token_type_ids" in self.input_names

    def run(self, arrays: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """Score one padded batch: returns one float32 logit per row."""
        feed = {k: v for k, v in arrays.items() if k in self.input_names}
        (logits,) = self._session.run([self._output], feed)
        logits = np.asarray(logits, dtype=np.float32)
        if logits.ndim == 2 and logits.shape[1] == 1:
            return logits[:, 0]
        if logits.ndim == 1:
            return logits
        raise ModelUnavailable(f"the model outputs {logits.shape[1:]} values per pair; "
                               "rerank needs a cross-encoder with a single relevance logit")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
