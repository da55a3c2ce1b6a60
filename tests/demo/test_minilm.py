"""The numpy forward pass of all-MiniLM-L6-v2 gives the vectors sentence-transformers gives.

Needs the `demo` extra (the model package, tokenizers, safetensors); `make demo` runs this file
before it embeds anything. The reference vectors were computed once with sentence-transformers
and torch (tests/demo/minilm_reference.json says which versions); CI does not install the model.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

REFERENCE = pathlib.Path(__file__).with_name("minilm_reference.json")

pytest.importorskip("all_minilm_l6_v2", reason="the demo extra is not installed: pip install -e '.[demo]'")
pytest.importorskip("tokenizers")


def test_vectors_equal_sentence_transformers_to_float_precision() -> None:
    from e2e.demo import embeddings, minilm

    reference = json.loads(REFERENCE.read_text())
    encoder = minilm.MiniLM(embeddings.model_dir())
    got = encoder.encode_all(reference["texts"])
    want = np.array(reference["vectors"], dtype=np.float32)
    assert got.shape == want.shape == (len(reference["texts"]), 384)
    assert np.abs(got - want).max() < 1e-5
    # Texts longer than 256 tokens are cut as sentence-transformers cuts them (the last text).
    assert len(encoder.tokenizer.encode(reference["texts"][-1]).ids) == minilm.MAX_TOKENS


def test_a_text_means_the_same_alone_and_in_a_padded_batch() -> None:
    from e2e.demo import embeddings, minilm

    encoder = minilm.MiniLM(embeddings.model_dir())
    alone = encoder.encode(["a small piece of paper"])
    padded = encoder.encode(["a small piece of paper", "a much longer text " * 10])[:1]
    assert np.abs(alone - padded).max() < 1e-5


def test_a_model_directory_that_is_not_bert_is_refused(tmp_path: pathlib.Path) -> None:
    from e2e.demo import minilm

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "hidden_act": "gelu_new"}))
    with pytest.raises(ValueError, match="not a BERT encoder"):
        minilm.MiniLM(tmp_path)
