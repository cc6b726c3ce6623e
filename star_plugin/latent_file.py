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
_MAX_FILE_RATE = 10_000_000  # Hz: far above any audio file's, below a resampler's overflow


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
    try:
        latent, layout = _checked(tensors, meta)
    except (ValueError, TypeError, KeyError) as exc:
        reason = f"missing {exc}" if isinstance(exc, KeyError) else exc
        raise ModelFileError(f"latent file '{path}' is damaged: {reason}") from None
    return latent, layout, meta


def _whole(meta: dict, key: str, low: int, high=None) -> int:
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low \
            or (high is not None and value > high):
        upto = f"..{high}" if high is not None else " or more"
        raise ValueError(f"{key} is {value!r}, expected an integer {low}{upto}")
    return value


def _checked(tensors: dict, meta: dict) -> Tuple[Latent, Layout]:
    """The latent and layout of a file, every field checked: a hand-edited or damaged file
    reached the decoder as NaN frames, 0 frames or a structure split past the channels."""
    import torch

    mean, logsigma = tensors["mean"], tensors.get("logsigma")
    if mean.dim() != 3 or not mean.is_floating_point():
        raise ValueError(f"mean is {tuple(mean.shape)} {mean.dtype}, expected float "
                         "(batch, channels, frames)")
    if mean.shape[0] == 0 or mean.shape[2] == 0:
        raise ValueError(f"mean holds no frames (shape {tuple(mean.shape)})")
    for name, tensor in (("mean", mean), ("logsigma", logsigma)):
        if tensor is not None and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(f"{name} holds {bad} NaN/Inf values")
    structure = _whole(meta, "structure_channels", 0, mean.shape[1])
    rate, hop = _whole(meta, "sample_rate", 1), _whole(meta, "hop", 1)
    samples = meta.get("num_samples")
    if samples is not None:
        samples = _whole(meta, "num_samples", 0)
    fields = meta["layout"]
    if not isinstance(fields, dict):
        raise ValueError(f"layout is {fields!r}, expected an object")
    layout = Layout(**fields)
    channels = _whole(fields, "channels", 1)
    model_channels = _whole(fields, "model_channels", 1, 2)
    for key in ("sample_rate", "model_rate"):
        _whole(fields, key, 1, _MAX_FILE_RATE)
    batch = channels if model_channels == 1 else -(-channels // 2)
    if mean.shape[0] != batch:
        raise ValueError(f"the latent has batch {mean.shape[0]} but its layout says "
                         f"{channels} channel(s), i.e. batch {batch}")
    # at most the decoded length (plus a second): a huge count would pad gigabytes of silence
    longest = mean.shape[2] * hop * layout.sample_rate // layout.model_rate + layout.sample_rate
    _whole(fields, "samples", 0, longest)
    latent = Latent(mean, logsigma, structure, rate, hop, samples)
    return latent, layout
