"""Batches for an encoder that pads each batch to its longest text.

Texts are taken longest first and cut into batches of about the same number of padded
tokens: many short texts per batch, few long ones. Padding stays small, and each batch's
working set (attention scores grow with the square of the length) stays about the same size.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Indices = npt.NDArray[np.int64]


def token_budget_batches(lengths: npt.NDArray[np.int64], max_batch_tokens: int) -> list[Indices]:
    """Indices into ``lengths``, longest first, grouped so that ``len(batch) * longest`` stays
    within ``max_batch_tokens`` (a text longer than the budget gets a batch of its own)."""
    order = np.argsort(-lengths, kind="stable")
    batches: list[Indices] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(max_batch_tokens // longest, 1)
        batches.append(order[start : start + size])
        start += size
    return batches
