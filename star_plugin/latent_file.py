"""Latent files written by ``star encode`` and read by ``star decode`` (safetensors + metadata)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Tuple


from .atomic import write_bytes_atomic
from .convert import Layout
from .errors import ModelFileError
from .latent import Latent

FORMAT = "star-latent"


def save_latent(path, latent: Latent, layout: Layout, model_name: str) -> Path:
    from safetensors.torch import save

    path = Path(path)
    tensors = {"mean": latent.mean.detach().cpu().contiguous()}
    if latent.logsigma is not None:
        tensors["logsigma"] = latent.logsigma.detach().cpu().contiguous()
    meta = {
        "format": FORMAT, "model": model_name,
        "structure_channels": latent.structure_channels, "sample_rate": latent.sample_rate,
        "hop": latent.hop, "num_samples": latent.num_samples,
        "layout": layout.__dict__,
    }
    write_bytes_atomic(path, save(tensors, metadata={"star": json.dumps(meta)}))
    return path


def load_latent(path) -> Tuple[Latent, Layout, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"latent file '{path}' does not exist")
    data = path.read_bytes()
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
        meta = json.loads(header["__metadata__"]["star"])
    except (SafetensorError, ValueError, KeyError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"'{path}' is not a STAR latent file or is corrupt ({exc})") from None
    if meta.get("format") != FORMAT or "mean" not in tensors:
        raise ModelFileError(f"'{path}' is not a STAR latent file (written by 'star encode')")
    latent = Latent(tensors["mean"], tensors.get("logsigma"), int(meta["structure_channels"]),
                    int(meta["sample_rate"]), int(meta["hop"]), meta.get("num_samples"))
    return latent, Layout(**meta["layout"]), meta
