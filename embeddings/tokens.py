"""Count the embedder's word pieces without loading torch (the Rust tokenizer is enough)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

from embeddings.model_files import model_dir


class WordPieceCounter:
    """Word-piece counts and token character offsets, as the embedder sees the text."""

    def __init__(self, tokenizer_file: Path | None = None) -> None:
        path = tokenizer_file or model_dir() / "tokenizer.json"
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, texts: list[str]) -> list[int]:
        """Word pieces per text, special tokens excluded."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of every word piece in `text`."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return [(start, end) for start, end in encoding.offsets]


@lru_cache(maxsize=1)
def default_counter() -> WordPieceCounter:
    return WordPieceCounter()
