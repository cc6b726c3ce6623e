"""Reconstruction metrics on numpy audio (channels, samples)."""
from __future__ import annotations

import numpy as np


def si_sdr(estimate: np.ndarray, reference: np.ndarray, eps: float = 1e-8) -> float:
    """Scale-invariant signal-to-distortion ratio in dB, averaged over channels.

    The reference is scaled by the least-squares gain alpha = <est, ref> / <ref, ref>;
    SI-SDR = 10 log10(|alpha ref|^2 / |alpha ref - est|^2). Channels that are silent in the
    reference are skipped (the ratio is undefined); all-silent input gives nan.
    """
    est = np.atleast_2d(np.asarray(estimate, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    n = min(est.shape[-1], ref.shape[-1])
    scores = []
    for e, r in zip(est[:, :n], ref[:, :n]):
        energy = np.dot(r, r)
        if energy <= eps:
            continue
        target = np.dot(e, r) / energy * r
        noise = target - e
        scores.append(10 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))
    return float(np.mean(scores)) if scores else float("nan")
