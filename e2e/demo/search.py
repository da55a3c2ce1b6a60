"""A question in words, asked of the index's Service: what a user of the index sees."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence

from e2e.demo import minilm
from e2e.stories.faissindex import Index

QUESTION = "a domestic animal that purrs"


def ask(index: Index, encoder: minilm.MiniLM, texts: Sequence[str], question: str = QUESTION, *,
        k: int = 3) -> tuple[str | None, list[str]]:
    """(the revision that answered, the texts of the k nearest rows) for `question` through the
    Service; row i of the embeddings is id i (no idsUri). Raises OSError when nothing answers."""
    host, port = index.service_address()
    vector = encoder.encode([question])[0]
    request = urllib.request.Request(f"http://{host}:{port}/v1/search",
                                     data=json.dumps({"vector": vector.tolist(), "k": k}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        result = json.loads(answer.read())
        revision = answer.headers.get("x-faiss-revision")
    return revision, [texts[int(i)] for i in result["ids"]]
