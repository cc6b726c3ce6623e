"""Shared data for the ``star bench`` tests: generated tones and noises on disk with a manifest,
a tiny saved model, one torch thread."""
import numpy as np
import pytest

from conftest import tiny_model
from star_plugin.audio import write_audio
from star_plugin.model_io import save_vae
from star_plugin.training.corpus.manifest import write_manifest

RATE = 16000
# hop 128 (125 Hz latent rate): a Mamba model that encodes 0.5 s in a few milliseconds.
FAST = dict(n_fft=64, stft_hop=16, frame_strides=[8])


def tone(f0, seconds=0.5, rate=RATE, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    env = np.exp(-3.0 * t)
    return (0.4 * env * np.sin(2 * np.pi * f0 * t)).astype(np.float32)[None]


def noise(seconds=0.5, rate=RATE, seed=0):
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(int(seconds * rate))).astype(np.float32)[None]


def make_corpus(root, n_train=6, n_test=4):
    """A corpus of tones (register low/high) and noises with a manifest, train and test."""
    entries = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            kind = "tone" if i % 2 == 0 else "noise"
            register = "low" if i % 4 < 2 else "high"
            audio = (tone(220 if register == "low" else 1760, seed=i) if kind == "tone"
                     else noise(seed=100 * (split == "test") + i))
            cid = f"{split}-{i:02d}-{kind}"
            write_audio(root / "audio" / f"{cid}.flac", audio, RATE)
            entries.append({"id": cid, "path": f"audio/{cid}.flac", "split": split,
                            "group": cid, "caption": f"a {kind}",
                            "labels": {"source": kind, "family": kind, "register": register,
                                       "effect": "dry"}})
    write_manifest(root, entries)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on this busy 2-core machine two threads stall at every operation."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_vae(tiny_model(**FAST), tmp_path_factory.mktemp("models") / "tiny")


