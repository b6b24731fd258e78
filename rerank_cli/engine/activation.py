"""Logits -> scores: each model's own output function, as sentence-transformers' CrossEncoder decides it.

CrossEncoder reads the activation from the model's files: `activation_fn` in
config_sentence_transformers.json, else `sentence_transformers.activation_fn` in config.json, else
the legacy `sbert_ce_default_activation_function` key (ms-marco models: Identity), else Sigmoid for
a one-label model. `--activation auto` follows that rule, so scores equal what the model card's
code returns. Two-label classifiers ([irrelevant, relevant] logits) get one score per pair: the
softmax probability of the relevant label under auto/sigmoid, the logit difference under none
(the softmax probability is exactly the sigmoid of that difference).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelUnavailable
from .encoding import read_json

if TYPE_CHECKING:  # numpy is imported where scores are computed: the CLI imports this module for its enum
    import numpy as np
    from numpy.typing import NDArray


class Activation(str, Enum):
    """The output function: auto (the model's own), none (raw logits) or sigmoid (probabilities)."""

    auto = "auto"
    none = "none"
    sigmoid = "sigmoid"


# The activation paths CrossEncoder writes (`fullname(module)`), and the short names people use.
_KNOWN = {"identity": Activation.none, "sigmoid": Activation.sigmoid}


def declared_activation(model_dir: Path) -> tuple[Activation | None, str]:
    """The activation the model's files declare, and where it was found (None: nothing declared).

    Only `torch.*` paths count, as in CrossEncoder without trust_remote_code; an untrusted path
    falls back to the default, as it does there.
    """
    places = (("config_sentence_transformers.json", ("activation_fn",)),
              ("config.json", ("sentence_transformers", "activation_fn")),
              ("config.json", ("sbert_ce_default_activation_function",)))
    for name, keys in places:
        value: Any = read_json(model_dir / name)
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value.startswith("torch."):
            continue
        short = value.rsplit(".", 1)[-1].lower()
        if short not in _KNOWN:
            raise ModelUnavailable(f"{model_dir / name}: activation {value!r} is not supported; "
                                   "choose one with --activation none or --activation sigmoid")
        return _KNOWN[short], f"{name}: {'.'.join(keys)}"
    return None, "default for its number of labels"


def to_scores(logits: NDArray[np.float32], requested: Activation,
              declared: Activation | None) -> NDArray[np.floating]:
    """One score per row from (n,), (n, 1) or (n, 2) logits, by the rule in this module's docstring.

    Raw one-label logits stay float32 (their shortest decimal form is what machine formats write);
    anything computed (sigmoid, softmax, differences) is float64, so that high scores do not
    saturate into ties.
    """
    import numpy as np

    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.ndim == 1:
        chosen = (declared or Activation.sigmoid) if requested is Activation.auto else requested
        return _sigmoid(logits.astype(np.float64)) if chosen is Activation.sigmoid else logits
    if logits.ndim == 2 and logits.shape[1] == 2:
        margin = logits[:, 1].astype(np.float64) - logits[:, 0].astype(np.float64)
        return margin if requested is Activation.none else _sigmoid(margin)
    raise ModelUnavailable(f"the model outputs {logits.shape[1:]} values per pair; rerank scores models with "
                           "one relevance logit or two ([irrelevant, relevant])")


def effective(requested: Activation, declared: Activation | None, labels: int) -> str:
    """What a run applies, in words, for messages and `models list`: none, sigmoid or softmax."""
    if labels == 2:
        return "none (logit difference)" if requested is Activation.none else "softmax"
    chosen = (declared or Activation.sigmoid) if requested is Activation.auto else requested
    return chosen.value


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))

