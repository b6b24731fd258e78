"""Local int8 quantization: an int8 copy of any model's ONNX graph, saved once beside its files.

Dynamic quantization with int8 weights quantized per output channel: onnxruntime then runs the
MatMuls as u8 x s8 integer products, which AVX-512 VNNI executes natively. Per-channel scales keep
the scores closer to fp32 than one scale per tensor (measured in benchmarks/). Only MatMuls with a
constant weight are quantized (said explicitly: optimum's quantizer, which sentence-transformers'
int8 exports use, leaves it unset and also quantizes the attention's QK^T and PV products).
"""

from __future__ import annotations

import os
import shutil
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

    data = [source.parent / (source.name + s) for s in EXTERNAL_DATA_SUFFIXES]
    data = [d for d in data if d.is_file()]
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantizing-") as tmp:
            staged, built = Path(tmp) / "source", Path(tmp) / "built"
            staged.mkdir()
            built.mkdir()
            if data and any(p.is_symlink() for p in (source, *data)):
                source = _stage(source, data, staged)
            out = built / target.name  # final name: an external-data file records it
            with quiet_logger(""):  # onnxruntime.quantization logs its advice on the root logger
                quantize_dynamic(source, out, weight_type=QuantType.QInt8, per_channel=True,
                                 use_external_data_format=bool(data), extra_options={"MatMulConstBOnly": True})
            mode = _default_mode(staged)
            for produced in sorted(built.iterdir(), key=lambda p: p == out):  # the graph last
                produced.chmod(mode)  # onnx writes external data with mode 0600: shared caches need the umask's
                os.replace(produced, target.parent / produced.name)
    except OSError as exc:
        raise ModelUnavailable(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def _stage(source: Path, data: list[Path], folder: Path) -> Path:
    """Real copies of a graph and its external data: onnx refuses external data behind a symlink (as in
    the Hugging Face cache, where snapshots link into blobs) or with several hard links."""
    for path in (source, *data):
        shutil.copyfile(path, folder / path.name)
    return folder / source.name


def _default_mode(folder: Path) -> int:
    """The mode a new file gets under the process umask (read from a probe file: os.umask is not thread-safe)."""
    probe = folder / ".mode-probe"
    probe.touch()
    mode = probe.stat().st_mode & 0o777
    probe.unlink()
    return mode
