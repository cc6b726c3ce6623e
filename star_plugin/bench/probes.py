"""Linear probes on latent summaries (``star bench latent``; protocol in docs/METRICS.md).

Features of a clip for a channel subset S: the time-mean and the time-std of the posterior mean
of each channel in S (2 |S| numbers; a multi-row clip -- e.g. stereo into a mono model -- pools
its rows). Features are standardised with the train split's mean and std. The probe is a
multinomial logistic regression (softmax, bias, L2 penalty ``l2 * ||W||^2`` on the weights),
fitted in float64 by full-batch L-BFGS (strong Wolfe line search) from zero weights:
deterministic. Accuracy on the eval split; classes the train split never shows count as errors.
The majority-class baseline predicts the train split's most frequent class (ties: the first
name in sorted order).
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np

DEFAULT_L2 = 1e-3
MAX_ITER = 200


def clip_features(mean, channels: Sequence[int]) -> np.ndarray:
    """Posterior mean ``(rows, C, frames)`` (torch or numpy) -> [time-mean, time-std] of the
    given channels, shape ``(2 * len(channels),)``, float64."""
    arr = mean.detach().cpu().numpy() if hasattr(mean, "detach") else np.asarray(mean)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    sub = arr[:, list(channels), :]  # (rows, |S|, frames)
    pooled = np.moveaxis(sub, 1, 0).reshape(len(channels), -1)  # (|S|, rows * frames)
    return np.concatenate([pooled.mean(axis=1), pooled.std(axis=1)])


def standardise(train: np.ndarray, *others: np.ndarray):
    """(x - mean_train) / std_train for every array; constant features get std 1."""
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return [(x - mu) / sd for x in (train, *others)]


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = DEFAULT_L2,
                 max_iter: int = MAX_ITER):
    """Multinomial logistic regression; returns (W (D, K), b (K,)) as float64 tensors."""
    import torch

    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.int64)
    w = torch.zeros(xt.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def probe(train_x: np.ndarray, train_labels: Sequence, eval_x: np.ndarray,
          eval_labels: Sequence, l2: float = DEFAULT_L2) -> Optional[dict]:
    """Fit on (train_x, train_labels), score on eval. Entries whose label is None are dropped.
    Returns None when the train split has fewer than two classes or either side is empty."""
    import torch

    tr = [i for i, v in enumerate(train_labels) if v is not None]
    ev = [i for i, v in enumerate(eval_labels) if v is not None]
    if not tr or not ev:
        return None
    ytr_names = [str(train_labels[i]) for i in tr]
    yev_names = [str(eval_labels[i]) for i in ev]
    classes = sorted(set(ytr_names))
    if len(classes) < 2:
        return None
    index = {c: k for k, c in enumerate(classes)}
    xtr, xev = standardise(np.asarray(train_x, np.float64)[tr], np.asarray(eval_x, np.float64)[ev])
    ytr = np.array([index[c] for c in ytr_names])
    w, b = fit_logistic(xtr, ytr, len(classes), l2)
    with torch.no_grad():
        pred = (torch.as_tensor(xev) @ w + b).argmax(dim=1).numpy()
    predicted = [classes[k] for k in pred]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, yev_names)]))
    counts = Counter(ytr_names)
    majority = min(classes, key=lambda c: (-counts[c], c))
    train_pred = (torch.as_tensor(xtr) @ w + b).argmax(dim=1).numpy()
    return {
        "accuracy": accuracy,
        "majority_accuracy": float(np.mean([t == majority for t in yev_names])),
        "majority_class": majority,
        "train_accuracy": float(np.mean(train_pred == ytr)),
        "classes": classes,
        "n_train": len(tr),
        "n_eval": len(ev),
        "n_features": int(xtr.shape[1]),
        "unseen_eval_labels": sorted(set(yev_names) - set(classes)),
    }


def feature_sets(channels: int, structure: int, random_draws: int = 5,
                 seed: int = 0) -> Dict[str, List[List[int]]]:
    """Channel subsets to probe: structure [0, K), texture [K, C), all [0, C), and
    ``random_draws`` random K-channel subsets of the whole latent (seeded; the reference for
    the structure probe at equal dimensionality). Empty subspaces are left out."""
    rng = np.random.default_rng(seed)
    sets = {}
    if structure > 0:
        sets["structure"] = [list(range(structure))]
    if structure < channels:
        sets["texture"] = [list(range(structure, channels))]
    sets["all"] = [list(range(channels))]
    if 0 < structure < channels:
        sets[f"random-{structure}"] = [sorted(rng.choice(channels, structure, replace=False).tolist())
                                       for _ in range(random_draws)]
    return sets


def run_probes(train_means: Sequence, train_labels: Sequence[dict], eval_means: Sequence,
               eval_labels: Sequence[dict], channels: int, structure: int,
               keys: Sequence[str], l2: float = DEFAULT_L2, seed: int = 0) -> dict:
    """Every (label key, feature set) probe. ``*_means``: posterior means per clip
    ``(rows, C, frames)``; ``*_labels``: label dicts per clip. Random subsets report the mean
    (and each draw's) accuracy."""
    sets = feature_sets(channels, structure, seed=seed)
    results: dict = {"feature_sets": {k: v for k, v in sets.items()}, "keys": {}}
    cache = {}

    def feats(means, subset):
        key = (id(means), tuple(subset))
        if key not in cache:
            cache[key] = np.stack([clip_features(m, subset) for m in means])
        return cache[key]

    for key in keys:
        tr_y = [lab.get(key) for lab in train_labels]
        ev_y = [lab.get(key) for lab in eval_labels]
        per_set = {}
        for name, subsets in sets.items():
            runs = [probe(feats(train_means, s), tr_y, feats(eval_means, s), ev_y, l2)
                    for s in subsets]
            runs = [r for r in runs if r is not None]
            if not runs:
                continue
            entry = dict(runs[0])
            if len(runs) > 1:
                entry["accuracy"] = float(np.mean([r["accuracy"] for r in runs]))
                entry["train_accuracy"] = float(np.mean([r["train_accuracy"] for r in runs]))
                entry["draw_accuracies"] = [r["accuracy"] for r in runs]
            per_set[name] = entry
        if per_set:
            results["keys"][key] = per_set
    return results
