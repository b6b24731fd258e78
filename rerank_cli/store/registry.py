"""Model records: the built-in registry, and what files make a cross-encoder on disk.

Facts about published repos were gathered from their public Hub pages and FastEmbed's registry
(qdrant/fastembed, fastembed/rerank/cross_encoder/onnx_text_cross_encoder.py), since the Hub cannot
be reached from where this was written. Each record says where its facts come from; "unconfirmed"
marks what could not be checked against a public page.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError, ModelUnavailable, UsageError

# Where published ONNX rerankers keep their graph, in the order we look (Xenova/FastEmbed layout first).
ONNX_CANDIDATES = ("onnx/model.onnx", "model.onnx")
REQUIRED_FILES = ("tokenizer.json", "config.json")
OPTIONAL_FILES = ("tokenizer_config.json", "special_tokens_map.json")
# External weights beside an .onnx file: `model.onnx_data` (torch/optimum) or `model.onnx.data`.
EXTERNAL_DATA_SUFFIXES = ("_data", ".data")
LOCAL_INT8 = "local-int8"  # the --variant of the copy `rerank models quantize` writes (never downloaded)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """A model ready to load: its directory and the ONNX graph inside it."""

    directory: Path
    onnx: Path
    warning: str | None = None  # something the caller should tell the user (e.g. the Hub was not reachable)


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

    def __post_init__(self) -> None:
        if not _REPO_ID.match(self.repo):
            raise ModelError(f"registry: {self.name}: bad repo id {self.repo!r}")
        if not self.onnx_file.endswith(".onnx") or any(not f.endswith(".onnx") for _, f in self.variants):
            raise ModelError(f"registry: {self.name}: ONNX files must end in .onnx")
        if self.size_gb <= 0 or self.max_length <= 0:
            raise ModelError(f"registry: {self.name}: size and max length must be positive")

    def onnx_for(self, variant: str | None) -> str:
        """The ONNX file of a variant (None: the full-precision default)."""
        if variant is None:
            return self.onnx_file
        for name, path in self.variants:
            if name == variant.lower():
                return path
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

REGISTRY: tuple[ModelSpec, ...] = (
    ModelSpec("Xenova/ms-marco-MiniLM-L-6-v2", "Xenova/ms-marco-MiniLM-L-6-v2", "onnx/model.onnx", 0.08,
              "apache-2.0", 512, ("en",), "MiniLM-L-6 trained on MS MARCO: fast English reranker (default)",
              variants=_XENOVA_VARIANTS, source=_XENOVA_SRC),
    ModelSpec("Xenova/ms-marco-MiniLM-L-12-v2", "Xenova/ms-marco-MiniLM-L-12-v2", "onnx/model.onnx", 0.12,
              "apache-2.0", 512, ("en",), "MiniLM-L-12 trained on MS MARCO: more accurate, half the speed",
              variants=_XENOVA_VARIANTS, source=_XENOVA_SRC),
    ModelSpec("Xenova/ms-marco-TinyBERT-L-2-v2", "Xenova/ms-marco-TinyBERT-L-2-v2", "onnx/model.onnx", 0.02,
              "apache-2.0", 512, ("en",), "TinyBERT-L-2 trained on MS MARCO: tiny and very fast, lower quality",
              variants=_XENOVA_VARIANTS,
              source="onnx/ listing on the repo's Hub page (17.6 MB model.onnx); licence unconfirmed"),
    ModelSpec("BAAI/bge-reranker-base", "BAAI/bge-reranker-base", "onnx/model.onnx", 1.04, "mit", 512,
              ("en", "zh"), "BGE reranker base (XLM-RoBERTa): English and Chinese",
              source="FastEmbed registry; languages from the model card (unconfirmed here)"),
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
              variants=_XENOVA_VARIANTS, source="unconfirmed: size, variants and limit from memory of the model card"),
)
DEFAULT_MODEL = REGISTRY[0].name


def local_int8_path(onnx: str) -> str:
    """Where the local int8 copy of an ONNX file lives: `onnx/model.onnx` -> `onnx/model_local_int8.onnx`."""
    base = onnx[: -len(".onnx")] if onnx.endswith(".onnx") else onnx
    return f"{base}_local_int8.onnx"


def find_spec(name: str) -> ModelSpec | None:
    """The registry record for a name, case-insensitively (None when it is not a registry name)."""
    wanted = name.lower()
    for spec in REGISTRY:
        if wanted in (spec.name.lower(), spec.repo.lower()):
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
    return ModelFiles(directory, find_onnx(directory, onnx_file, variant))


def find_onnx(directory: Path, onnx_file: str | None, variant: str | None = None) -> Path:
    """The named ONNX file, else onnx/model.onnx, else model.onnx; the error lists what exists."""
    candidates = (onnx_file,) if onnx_file else ONNX_CANDIDATES
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    found = sorted(str(p.relative_to(directory)) for p in directory.rglob("*.onnx"))
    wanted = (onnx_file or " or ".join(ONNX_CANDIDATES)) + (f" (the variant {variant!r})" if variant else "")
    hint = f"; .onnx files here: {', '.join(found)} (choose one with --onnx-file)" if found else ""
    raise ModelUnavailable(f"{directory}: no {wanted}{hint}")


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
    return local_model(path, spec.onnx_for(variant) if spec else variant_file(variant), variant=variant)


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
