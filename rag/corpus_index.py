"""Open a built index directory for querying: the vectors, the passage store and the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embeddings.index import VectorIndex
from rag.errors import IndexStateError
from rag.manifest import read_manifest
from rag.store import PassageStore


@dataclass
class CorpusIndex:
    """A consistent, read-only view of one index generation."""

    index_dir: Path
    manifest: dict[str, Any]
    vectors: VectorIndex
    store: PassageStore

    @classmethod
    def open(cls, index_dir: Path, *, verify: bool = True) -> CorpusIndex:
        """`verify=False` skips the checksums (sizes are still checked): for a caller that has just
        verified or written this generation, so large indexes are not hashed twice."""
        manifest = read_manifest(index_dir, verify=verify)
        files = manifest["files"]
        try:
            vectors = VectorIndex.load(index_dir / files["vectors"]["name"])
            store = PassageStore.open(index_dir / files["store"]["name"])
        except (RuntimeError, OSError, ValueError) as exc:
            raise IndexStateError(f"index in '{index_dir}' cannot be opened: {exc}") from exc
        if len(vectors) != manifest["counts"]["passages"]:
            raise IndexStateError(
                f"index in '{index_dir}' is inconsistent: {len(vectors)} vectors for "
                f"{manifest['counts']['passages']} passages"
            )
        return cls(index_dir, manifest, vectors, store)

    @property
    def model_id(self) -> str:
        return str(self.manifest["encoder"]["model_id"])

    def close(self) -> None:
        self.store.close()
