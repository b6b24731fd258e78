"""Model records: the built-in registry, and what files make a cross-encoder on disk.

Facts about published repos were gathered from their public Hub pages and FastEmbed's registry
(qdrant/fastembed, fastembed/rerank/cross_encoder/onnx_text_cross_encoder.py), since the Hub cannot
be reached from where this was written. Each record says where its facts come from; "unconfirmed"
marks what could not be checked against a public page.
"""

from __future__ import annotations

import difflib
import platform
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ModelError, ModelUnavailable, UsageError

# Where published ONNX rerankers keep their graph, in the order we look (Xenova/FastEmbed layout first).
ONNX_CANDIDATES = ("onnx/model.onnx", "model.onnx")
REQUIRED_FILES = ("tokenizer.json", "config.json")
OPTIONAL_FILES = ("tokenizer_config.json", "special_tokens_map.json")
# External weights beside an .onnx file: `model.onnx_data` (torch/optimum) or `model.onnx.data`.
EXTERNAL_DATA_SUFFIXES = ("_data", ".data")
INT8 = "int8"  # the --variant that picks the best published int8 file for this CPU
LOCAL_INT8 = "local-int8"  # the --variant of the copy `rerank models quantize` writes (never downloaded)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """A model ready to load: its directory and the ONNX graph inside it."""

    directory: Path
    onnx: Path
    warning: str | None = None  # something the caller should tell the user (e.g. the Hub was not reachable)
    note: str | None = None  # what was chosen for the user (e.g. which int8 file `--variant int8` picked)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One built-in model: where it lives on the Hub and what a user should know before pulling it."""

    name: str
    repo: str
    onnx_file: str
    size_gb: float
    license: str
    max_length: int
    languages: tuple[str, ...]
    description: str
    revision: str = "main"
    onnx_data: str | None = None  # external-data file the ONNX graph loads, when it has one
    variants: tuple[tuple[str, str], ...] = field(default=())  # (variant, onnx file) pairs
    source: str = ""  # where the facts above come from
    # What `--activation auto` applies, as the model's files declare it (CrossEncoder's rule): "none" for
    # models that declare Identity (ms-marco), "sigmoid" for one-label models that declare nothing.
    activation: str = "sigmoid"
    aliases: tuple[str, ...] = ()  # former repo ids the Hub redirects to this one

    def __post_init__(self) -> None:
        if not _REPO_ID.match(self.repo):
            raise ModelError(f"registry: {self.name}: bad repo id {self.repo!r}")
        if not self.onnx_file.endswith(".onnx") or any(not f.endswith(".onnx") for _, f in self.variants):
            raise ModelError(f"registry: {self.name}: ONNX files must end in .onnx")
        if self.size_gb <= 0 or self.max_length <= 0:
            raise ModelError(f"registry: {self.name}: size and max length must be positive")
        if self.activation not in ("none", "sigmoid"):
            raise ModelError(f"registry: {self.name}: activation must be none or sigmoid")

    def onnx_for(self, variant: str | None) -> str:
        """The ONNX file of a variant (None: the full-precision default; `int8`: the best for this CPU)."""
        return self.pick(variant)[1]

    def pick(self, variant: str | None) -> tuple[str | None, str]:
        """(variant, ONNX file) for a requested variant; `int8` becomes the published int8 file best for this CPU."""
        if variant is None:
            return None, self.onnx_file
        published = {name.lower(): (name, path) for name, path in self.variants}
        if variant.lower() == INT8:
            best = next((v for v in int8_preference() if v in published), None)
            if best is not None:
                return published[best]
        if variant.lower() in published:
            return published[variant.lower()]
        known = ", ".join(n for n, _ in self.variants) or "none"
        raise UsageError(f"{self.name} has no variant {variant!r} (variants: {known})")

    @property
    def files(self) -> tuple[str, ...]:
        """Every file a pull fetches for the default variant (tokenizer and config files, never the repo)."""
        extra = (self.onnx_data,) if self.onnx_data else ()
        return (*REQUIRED_FILES, *OPTIONAL_FILES, self.onnx_file, *extra)


_XENOVA_SRC = ("FastEmbed registry; onnx/ listing on the repo's Hub page "
               "(model.onnx, model_fp16.onnx, model_quantized.onnx)")
_JINA_V1_VARIANTS = (("quantized", "onnx/model_quantized.onnx"), ("int8", "onnx/model_int8.onnx"),
                     ("uint8", "onnx/model_uint8.onnx"), ("fp16", "onnx/model_fp16.onnx"),
                     ("q4", "onnx/model_q4.onnx"), ("bnb4", "onnx/model_bnb4.onnx"))
_XENOVA_VARIANTS = (("quantized", "onnx/model_quantized.onnx"), ("fp16", "onnx/model_fp16.onnx"))
# sentence-transformers' ONNX exports (backend/optimize.py and backend/quantize.py name them
# `model_{suffix}.onnx` under onnx/): O1-O3 are fp32 graph optimizations, O4 adds fp16 (GPU only), and
# the int8 files are tuned per CPU; `--variant int8` picks the one for this CPU.
_ST_VARIANTS = (("O1", "onnx/model_O1.onnx"), ("O2", "onnx/model_O2.onnx"), ("O3", "onnx/model_O3.onnx"),
                ("O4", "onnx/model_O4.onnx"), ("qint8_avx512_vnni", "onnx/model_qint8_avx512_vnni.onnx"),
                ("qint8_avx512", "onnx/model_qint8_avx512.onnx"), ("qint8_arm64", "onnx/model_qint8_arm64.onnx"),
                ("quint8_avx2", "onnx/model_quint8_avx2.onnx"))
_ST_SRC = ("file naming from sentence-transformers' backend/utils.py, optimize.py, quantize.py; the legacy "
           "config key sbert_ce_default_activation_function=Identity (so logits) seen for L6 in a pinned-snapshot "
           "check; ")
_MODERNBERT_VARIANTS = (("int8", "onnx/model_int8.onnx"), ("uint8", "onnx/model_uint8.onnx"),
                        ("quantized", "onnx/model_quantized.onnx"), ("fp16", "onnx/model_fp16.onnx"),
                        ("q4", "onnx/model_q4.onnx"), ("q4f16", "onnx/model_q4f16.onnx"),
                        ("bnb4", "onnx/model_bnb4.onnx"))

REGISTRY: tuple[ModelSpec, ...] = (
    ModelSpec("Xenova/ms-marco-MiniLM-L-6-v2", "Xenova/ms-marco-MiniLM-L-6-v2", "onnx/model.onnx", 0.08,
              "apache-2.0", 512, ("en",), "MiniLM-L-6 trained on MS MARCO: fast English reranker (default)",
              variants=_XENOVA_VARIANTS, source=_XENOVA_SRC + "; config declares Identity (logits)",
              activation="none"),
    ModelSpec("Xenova/ms-marco-MiniLM-L-12-v2", "Xenova/ms-marco-MiniLM-L-12-v2", "onnx/model.onnx", 0.12,
              "apache-2.0", 512, ("en",), "MiniLM-L-12 trained on MS MARCO: more accurate, half the speed",
              variants=_XENOVA_VARIANTS, source=_XENOVA_SRC + "; Identity declaration unconfirmed (as L-6)",
              activation="none"),
    ModelSpec("Xenova/ms-marco-TinyBERT-L-2-v2", "Xenova/ms-marco-TinyBERT-L-2-v2", "onnx/model.onnx", 0.02,
              "apache-2.0", 512, ("en",), "TinyBERT-L-2 trained on MS MARCO: tiny and very fast, lower quality",
              variants=_XENOVA_VARIANTS, activation="none",
              source="onnx/ listing on the repo's Hub page (17.6 MB model.onnx); licence and Identity unconfirmed"),
    ModelSpec("cross-encoder/ms-marco-MiniLM-L6-v2", "cross-encoder/ms-marco-MiniLM-L6-v2", "onnx/model.onnx", 0.09,
              "apache-2.0", 512, ("en",), "MiniLM-L6 MS MARCO, sentence-transformers' own ONNX exports",
              variants=_ST_VARIANTS, activation="none", aliases=("cross-encoder/ms-marco-MiniLM-L-6-v2",),
              source=_ST_SRC + "onnx/model.onnx (~91 MB), model_O4.onnx, model_quint8_avx2.onnx seen; the other "
                               "variants unconfirmed for this repo"),
    ModelSpec("cross-encoder/ms-marco-MiniLM-L12-v2", "cross-encoder/ms-marco-MiniLM-L12-v2", "onnx/model.onnx",
              0.13, "apache-2.0", 512, ("en",), "MiniLM-L12 MS MARCO, sentence-transformers' own ONNX exports",
              variants=_ST_VARIANTS, activation="none", aliases=("cross-encoder/ms-marco-MiniLM-L-12-v2",),
              source=_ST_SRC + "onnx/model_quint8_avx2.onnx seen; size, licence and other variants unconfirmed"),
    ModelSpec("cross-encoder/ms-marco-TinyBERT-L2-v2", "cross-encoder/ms-marco-TinyBERT-L2-v2", "onnx/model.onnx",
              0.02, "apache-2.0", 512, ("en",), "TinyBERT-L2 MS MARCO, sentence-transformers' own ONNX exports",
              variants=_ST_VARIANTS, activation="none", aliases=("cross-encoder/ms-marco-TinyBERT-L-2-v2",),
              source=_ST_SRC + "onnx/model.onnx and apache-2.0 seen; sentence-transformers' tests expect raw "
                               "logits from it; variants and size unconfirmed"),
    ModelSpec("BAAI/bge-reranker-base", "BAAI/bge-reranker-base", "onnx/model.onnx", 1.04, "mit", 512,
              ("en", "zh"), "BGE reranker base (XLM-RoBERTa): English and Chinese",
              source="FastEmbed registry (onnx/model.onnx, 1.04 GB, mit); 278M parameters, en+zh from "
                     "bge-model.com; no activation key expected (sigmoid, as its card says) unconfirmed"),
    ModelSpec("BAAI/bge-reranker-large", "BAAI/bge-reranker-large", "onnx/model.onnx", 2.24, "mit", 512,
              ("en", "zh"), "BGE reranker large (XLM-RoBERTa large): English and Chinese, more accurate than base",
              onnx_data="onnx/model.onnx_data",
              source="560M parameters, 2.24 GB, mit, 512 from bge-model.com and secondary pages; onnx/model.onnx "
                     "referenced by a third party; onnx/model.onnx_data (as #10 states) unconfirmed"),
    ModelSpec("jinaai/jina-reranker-v1-tiny-en", "jinaai/jina-reranker-v1-tiny-en", "onnx/model.onnx", 0.13,
              "apache-2.0", 8192, ("en",), "Jina reranker v1 tiny: 8K context, fewer parameters than turbo",
              variants=_JINA_V1_VARIANTS, source="FastEmbed registry; onnx/ listing on the repo's Hub page"),
    ModelSpec("jinaai/jina-reranker-v1-turbo-en", "jinaai/jina-reranker-v1-turbo-en", "onnx/model.onnx", 0.15,
              "apache-2.0", 8192, ("en",), "Jina reranker v1 turbo: 8K context, fast English reranker",
              variants=_JINA_V1_VARIANTS, source="FastEmbed registry; onnx/ listing on the repo's Hub page"),
    ModelSpec("jinaai/jina-reranker-v2-base-multilingual", "jinaai/jina-reranker-v2-base-multilingual",
              "onnx/model.onnx", 1.11, "cc-by-nc-4.0", 1024, ("multilingual",),
              "Jina reranker v2 multilingual; NON-COMMERCIAL licence (cc-by-nc-4.0)",
              variants=(("quantized", "onnx/model_quantized.onnx"), ("fp16", "onnx/model_fp16.onnx")),
              source="FastEmbed registry; variants and 1024-token limit unconfirmed"),
    ModelSpec("BGLAW/bge-reranker-v2-m3-onnx", "BGLAW/bge-reranker-v2-m3-onnx", "onnx/model.onnx", 2.27,
              "apache-2.0", 8192, ("multilingual",),
              "BGE reranker v2 m3 (XLM-RoBERTa large) export; weights in onnx/model.onnx_data",
              onnx_data="onnx/model.onnx_data",
              source="onnx/ listing on the repo's Hub page (model.onnx 657 kB + model.onnx_data 2.27 GB); "
                     "licence from BAAI/bge-reranker-v2-m3; root tokenizer files unconfirmed"),
    ModelSpec("mixedbread-ai/mxbai-rerank-xsmall-v1", "mixedbread-ai/mxbai-rerank-xsmall-v1", "onnx/model.onnx",
              0.28, "apache-2.0", 512, ("en",), "mixedbread rerank xsmall (DeBERTa-v3): small English reranker",
              variants=_XENOVA_VARIANTS,
              source="onnx/model.onnx, model_quantized.onnx; apache-2.0, 70M parameters, 512, en (vendor docs); "
                     "size and fp16 variant unconfirmed; activation key unconfirmed"),
    ModelSpec("mixedbread-ai/mxbai-rerank-base-v1", "mixedbread-ai/mxbai-rerank-base-v1", "onnx/model.onnx",
              0.74, "apache-2.0", 512, ("en",), "mixedbread rerank base (DeBERTa-v3): accurate English reranker",
              variants=_XENOVA_VARIANTS,
              source="apache-2.0, 184M parameters, 512, en and 'ONNX' format from vendor docs; file names as the "
                     "xsmall repo (unconfirmed); size = 184M x 4 bytes"),
    ModelSpec("Alibaba-NLP/gte-reranker-modernbert-base", "Alibaba-NLP/gte-reranker-modernbert-base",
              "onnx/model.onnx", 0.60, "apache-2.0", 8192, ("en",),
              "GTE reranker (ModernBERT base): 8K context, English",
              variants=_MODERNBERT_VARIANTS,
              source="apache-2.0, 149M parameters, 8192 from its README; onnx/model.onnx and model_int8.onnx seen "
                     "(single logit); the other six variants (Transformers.js naming) unconfirmed"),
    ModelSpec("onnx-community/bge-reranker-v2-m3-ONNX", "onnx-community/bge-reranker-v2-m3-ONNX",
              "onnx/model_quantized.onnx", 0.57, "apache-2.0", 8192, ("multilingual",),
              "BGE reranker v2 m3, int8: multilingual and commercially usable (Apache-2.0)",
              variants=(("int8", "onnx/model_int8.onnx"), ("fp16", "onnx/model_fp16.onnx")),
              source="onnx/model_quantized.onnx = onnx/model_int8.onnx (570,727,094 bytes, same sha256) seen in "
                     "third-party pins; fp16 file mentioned once; licence from BAAI/bge-reranker-v2-m3; the fp32 "
                     "export is not used (no confirmed file name); 8192 limit unconfirmed"),
)
DEFAULT_MODEL = REGISTRY[0].name


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere, where only the architecture counts)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def int8_preference(flags: frozenset[str] | None = None, machine: str | None = None) -> tuple[str, ...]:
    """Published int8 variants from best to worst for a CPU, by sentence-transformers' export names.

    VNNI runs u8 x s8 products natively; plain AVX-512 and AVX2 files are tuned for those units; ARM64
    files for NEON. Generic int8 files (Xenova/Jina `model_int8`, `model_quantized`) come last: they
    run everywhere.
    """
    flags = cpu_flags() if flags is None else flags
    machine = (machine or platform.machine()).lower()
    order: list[str] = []
    if machine in ("x86_64", "amd64", "i686", "x86"):
        if {"avx512_vnni", "avx512vnni"} & flags:
            order.append("qint8_avx512_vnni")
        if "avx512f" in flags:
            order.append("qint8_avx512")
        if "avx2" in flags:
            order.append("quint8_avx2")
    elif machine in ("arm64", "aarch64"):
        order.append("qint8_arm64")
    return (*order, "int8", "quantized")


def cpu_name(variant: str) -> str:
    """How a CPU-specific variant is described to users."""
    return {"qint8_avx512_vnni": "AVX-512 VNNI", "qint8_avx512": "AVX-512", "quint8_avx2": "AVX2",
            "qint8_arm64": "ARM64"}.get(variant, "any CPU")


def int8_note(variant: str, onnx: str) -> str:
    """The stderr line that says which file `--variant int8` chose."""
    return f"--variant int8: using {onnx} (variant {variant}, for {cpu_name(variant)})"


def default_onnx(present: Callable[[str], bool]) -> str | None:
    """The graph to use when none is named: onnx/model.onnx, else model.onnx, else what exports without
    one publish: sentence-transformers' exact fp32 optimizations (O1, O2; O3 approximates GELU, O4 is fp16),
    then the int8 file best for this CPU (`model_qint8_avx512_vnni.onnx`, ..., `model_quantized.onnx`)."""
    fallbacks = ("onnx/model_O1.onnx", "onnx/model_O2.onnx", *(variant_file(v) for v in int8_preference()))
    return next((name for name in (*ONNX_CANDIDATES, *fallbacks) if present(name)), None)


def fallback_note(onnx: str) -> str | None:
    """The stderr line for a graph chosen without being named, when it is not the usual one."""
    return None if onnx in ONNX_CANDIDATES else f"no {ONNX_CANDIDATES[0]} in the model: using {onnx}"


def local_int8_path(onnx: str) -> str:
    """Where the local int8 copy of an ONNX file lives: `onnx/model.onnx` -> `onnx/model_local_int8.onnx`."""
    base = onnx[: -len(".onnx")] if onnx.endswith(".onnx") else onnx
    return f"{base}_local_int8.onnx"


def find_spec(name: str) -> ModelSpec | None:
    """The registry record for a name, case-insensitively (None when it is not a registry name)."""
    wanted = name.lower()
    for spec in REGISTRY:
        if wanted in (spec.name.lower(), spec.repo.lower(), *(a.lower() for a in spec.aliases)):
            return spec
    return None


def closest_names(name: str, limit: int = 3) -> list[str]:
    """Registry names that look like a mistyped one, best first."""
    names = {s.name.lower(): s.name for s in REGISTRY}
    short = {s.name.split("/")[-1].lower(): s.name for s in REGISTRY}
    wanted = name.lower()
    contains = [full for low, full in names.items() if wanted and wanted in low]
    hits = difflib.get_close_matches(wanted, list(names) + list(short), n=limit * 2, cutoff=0.5)
    found = list(dict.fromkeys(contains + [names.get(h) or short[h] for h in hits]))
    return found[:limit]


def is_repo_id(name: str) -> bool:
    """Whether a model argument has the shape of a Hub repo id (`org/name`)."""
    return bool(_REPO_ID.match(name)) and ".." not in name


def local_model(directory: Path, onnx_file: str | None = None, variant: str | None = None) -> ModelFiles:
    """Check a model directory holds what a cross-encoder needs, naming the first missing file."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a model directory")
    if not directory.is_dir():
        raise ModelUnavailable(f"{directory}: no such model directory")
    for name in REQUIRED_FILES:
        if not (directory / name).is_file():
            raise ModelUnavailable(f"{directory}: missing {name} (a model directory needs "
                                   f"{', '.join(REQUIRED_FILES)} and an .onnx file)")
    onnx = find_onnx(directory, onnx_file, variant)
    note = None if onnx_file else fallback_note(onnx.relative_to(directory).as_posix())
    return ModelFiles(directory, onnx, note=note)


def find_onnx(directory: Path, onnx_file: str | None, variant: str | None = None) -> Path:
    """The named ONNX file, else onnx/model.onnx, else model.onnx; the error lists what exists."""
    name = onnx_file if onnx_file else default_onnx(lambda c: (directory / c).is_file())
    if name is not None and (directory / name).is_file():
        return directory / name
    found = sorted(str(p.relative_to(directory)) for p in directory.rglob("*.onnx"))
    wanted = (onnx_file or " or ".join(ONNX_CANDIDATES)) + (f" (the variant {variant!r})" if variant else "")
    hint = f"; .onnx files here: {', '.join(found)} (choose one with onnx_file=PATH)" if found else ""
    raise ModelUnavailable(f"{directory}: no {wanted}{hint}", param="onnx_file")


def check_name(model: str) -> None:
    """An empty model name is a usage error (a path of "" would otherwise mean the current directory)."""
    if not model.strip():
        raise UsageError("the model name is empty: give a model directory, registry name or hub repo id")


def check_choice(variant: str | None, onnx_file: str | None, revision: str | None = None) -> None:
    """Given choices are not empty (they would silently mean the default), and a published variant and an
    explicit ONNX file, which both choose the graph, are not given together."""
    for what, value in (("variant", variant), ("ONNX file", onnx_file), ("revision", revision)):
        if value is not None and not value.strip():
            raise UsageError(f"the {what} is empty: leave it out for the default")
    if variant and onnx_file and variant.lower() != LOCAL_INT8:
        raise UsageError(f"the variant {variant!r} and the ONNX file {onnx_file!r} both choose the model's graph; "
                         "give one of them")


def variant_file(variant: str) -> str:
    """The ONNX file of a variant outside the registry: the Xenova/Jina naming convention."""
    return f"onnx/model_{variant.lower()}.onnx"


def local_variant(path: Path, text: str, variant: str | None, onnx_file: str | None) -> ModelFiles:
    """A local model directory; a variant names a file in it, as in a hub repo, and must exist there."""
    if path.exists() and not path.is_dir():
        raise UsageError(not_a_directory(path))
    check_choice(variant, onnx_file)
    if not variant:
        return local_model(path, onnx_file)
    if variant.lower() == LOCAL_INT8:
        base = local_model(path, onnx_file)
        int8 = local_int8_path(str(base.onnx.relative_to(base.directory)))
        if not (path / int8).is_file():
            fix = f"rerank models quantize {shlex.quote(text)}"
            fix += f" --onnx-file {shlex.quote(onnx_file)}" if onnx_file else ""
            raise ModelUnavailable(f"{path}: no {int8}; make it once with `{fix}`")
        return ModelFiles(base.directory, path / int8)
    spec = spec_of_directory(path)
    if spec is not None:
        picked, onnx = spec.pick(variant)
    else:
        present = [v for v in int8_preference() if (path / variant_file(v)).is_file()]
        picked = present[0] if variant.lower() == INT8 and present else variant.lower()
        onnx = variant_file(picked)
    files = local_model(path, onnx, variant=variant)
    return replace(files, note=int8_note(picked, onnx)) if variant.lower() == INT8 and picked else files


def spec_of_directory(path: Path) -> ModelSpec | None:
    """The registry record of a directory that is a snapshot in a Hugging Face cache (models--org--name)."""
    snapshot = path.resolve()
    if snapshot.parent.name != "snapshots" or not snapshot.parent.parent.name.startswith("models--"):
        return None
    return find_spec(snapshot.parent.parent.name[len("models--"):].replace("--", "/", 1))


def not_a_directory(path: Path) -> str:
    """Explain a model argument that names a file; suggest the model directory holding it."""
    home = next((p for p in path.resolve().parents if all((p / f).is_file() for f in REQUIRED_FILES)), None)
    if home is None:
        return f"{path} is a file, not a model directory (one holding {', '.join(REQUIRED_FILES)} and an .onnx file)"
    if path.suffix == ".onnx":
        inner = path.resolve().relative_to(home)
        return f"{path} is a file, not a model directory; use its model directory: -m {home} --onnx-file {inner}"
    return f"{path} is a file, not a model directory; use the directory holding it: {home}"
