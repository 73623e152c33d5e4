"""A model's output row as class probabilities and its top k classes: what /v1/classify, the
OIP classification extension and `xnornet predict` answer."""

from __future__ import annotations

import numpy as np

from .errors import ApiError


class BadOutput(ApiError):
    """The model produced outputs that are no probabilities (NaN or infinite)."""

    status, code = 500, "bad_output"


def softmax(row: np.ndarray) -> np.ndarray:
    z = row.astype(np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def probabilities(row: np.ndarray, output_kind: str) -> np.ndarray:
    """One output row as class probabilities (float64): renormalized with negatives clipped when
    the model outputs probabilities (the softmax of the logits if nothing positive is left), the
    softmax of its logits otherwise."""
    if output_kind == "probabilities":
        probs = np.clip(row.astype(np.float64), 0.0, None)
        total = probs.sum()
        return probs / total if total > 0 else softmax(row)
    return softmax(row)


def topk(outputs: np.ndarray, output_kind: str, k: int) -> list[tuple[int, float]]:
    """The k most probable classes of one output row, best first (ties in index order), as
    (index, probability). Raises BadOutput when the probabilities are not all finite."""
    probs = probabilities(np.asarray(outputs), output_kind)
    if not np.all(np.isfinite(probs)):
        raise BadOutput("the model produced non-finite outputs")
    return [(int(i), float(probs[i])) for i in np.argsort(-probs, kind="stable")[:k]]
