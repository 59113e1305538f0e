"""Inception Score (Salimans et al. 2016) from classifier logits.

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x)

computed on ``splits`` equal parts of the set (10 in the original definition); reported as
the mean and standard deviation over the parts. 1 for uninformative predictions; K when K
classes are each predicted with certainty equally often.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the IS of (N, K) logits over ``splits`` parts."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(logits) < splits:
        raise ValueError(f"IS needs (N >= splits={splits}, K) logits, got shape {logits.shape}")
    log_p = log_softmax(logits, axis=1)
    scores = []
    for part in np.array_split(log_p, splits):
        log_marginal = np.log(np.exp(part).mean(axis=0))
        kl = (np.exp(part) * (part - log_marginal)).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
