"""Local int8 quantization: an int8 copy of any model's ONNX graph, saved once beside its files.

Dynamic quantization with int8 weights quantized per output channel: onnxruntime then runs the
MatMuls as u8 x s8 integer products, which AVX-512 VNNI executes natively. Per-channel scales keep
the scores closer to fp32 than one scale per tensor (measured in benchmarks/).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ModelUnavailable
from .hub import quiet_logger
from .registry import EXTERNAL_DATA_SUFFIXES


def quantize(source: Path, target: Path) -> Path:
    """Write an int8 copy of `source` at `target`; an existing copy is kept (never rebuilt).

    The copy is built in a temporary folder beside the target and moved in when complete, so an
    interrupted run never leaves a half file that a later run would load.
    """
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    external = any((source.parent / (source.name + s)).is_file() for s in EXTERNAL_DATA_SUFFIXES)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantizing-") as tmp:
            out = Path(tmp) / target.name  # final name: an external-data file records it
            with quiet_logger(""):  # onnxruntime.quantization logs its advice on the root logger
                quantize_dynamic(source, out, weight_type=QuantType.QInt8, per_channel=True,
                                 use_external_data_format=external)
            for produced in sorted(Path(tmp).iterdir(), key=lambda p: p == out):  # the graph last
                os.replace(produced, target.parent / produced.name)
    except OSError as exc:
        raise ModelUnavailable(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target
