"""The index directory's manifest: what was indexed, with which model and settings, and checksums.

The manifest is the commit point of an index build. Data files are written under new
generation names first; only then is the manifest atomically replaced, so a crash at any
moment leaves either the previous index or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from embeddings.model_files import sha256_file
from rag.errors import IndexStateError

FORMAT = 1
MANIFEST = "manifest.json"
FILE_ROLES = ("vectors", "store")


def default_index_dir(corpus: Path) -> Path:
    """Outside the corpus (which may be read-only), keyed by the corpus's absolute path."""
    base = os.environ.get("RAG_INDEX_HOME")
    root = (
        Path(base)
        if base
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news-qa"
    )
    resolved = corpus.resolve()
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return root / f"{resolved.name or 'corpus'}-{key}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Temp file beside `path`, fsync, rename over it, fsync the folder."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_entry(path: Path) -> dict[str, Any]:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's content without its own "checksum" entry (canonical JSON)."""
    body = {key: value for key, value in manifest.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def write_manifest(index_dir: Path, manifest: dict[str, Any]) -> None:
    """Atomically, with a checksum of its own, so a damaged manifest is caught like a data file."""
    manifest = {**manifest, "checksum": manifest_digest(manifest)}
    data = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode()
    atomic_write_bytes(index_dir / MANIFEST, data)


def read_manifest(index_dir: Path, *, verify: bool = True) -> dict[str, Any]:
    """The manifest, after checking that every data file it names is present and intact."""
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexStateError(f"no index in '{index_dir}' (manifest.json is missing)")
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise IndexStateError(f"index manifest '{path}' is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexStateError(f"index manifest '{path}' has an unknown format")
    if "checksum" not in manifest:
        raise IndexStateError(f"index manifest '{path}' has no checksum (an older version wrote it)")
    if manifest["checksum"] != manifest_digest(manifest):
        raise IndexStateError(f"index manifest '{path}' fails its checksum (corrupt)")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(FILE_ROLES):
        raise IndexStateError(f"index manifest '{path}' does not list its data files")
    for role in FILE_ROLES:
        entry = files[role]
        data_file = index_dir / str(entry.get("name"))
        if not data_file.is_file():
            raise IndexStateError(f"index file '{data_file.name}' ({role}) is missing")
        if data_file.stat().st_size != entry.get("bytes"):
            raise IndexStateError(f"index file '{data_file.name}' ({role}) has the wrong size (truncated?)")
        if verify and sha256_file(data_file) != entry.get("sha256"):
            raise IndexStateError(f"index file '{data_file.name}' ({role}) fails its checksum (corrupt)")
    return manifest


def check_compatible(manifest: dict[str, Any], model_id: str, chunking: dict[str, Any]) -> None:
    """Raise when the index was built with another model or other chunking settings."""
    if manifest.get("encoder", {}).get("model_id") != model_id:
        raise IndexStateError(
            f"index was built with model '{manifest.get('encoder', {}).get('model_id')}', not '{model_id}'"
        )
    if manifest.get("chunking") != chunking:
        raise IndexStateError(f"index was built with chunking {manifest.get('chunking')}, not {chunking}")
