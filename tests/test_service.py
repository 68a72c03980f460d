from __future__ import annotations

import threading
from pathlib import Path

from rag.pipeline import PipelineSettings
from rag.service import SharedCorpus
from rag.uploads import save_upload
from tests.conftest import FakeEncoder


def _corpus(root: Path) -> Path:
    root.mkdir()
    (root / "a.txt").write_text("Dock strike\n\nDock workers in Antwerp walked out on Monday.\n")
    (root / "b.txt").write_text("Tea prices\n\nTea prices in Kenya rose by 12% in March.\n")
    return root


def test_an_upload_is_indexed_incrementally_and_swapped_in(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    corpus = _corpus(tmp_path / "corpus")
    shared = SharedCorpus(corpus, index_dir=tmp_path / "index", encoder=fake_encoder)
    before = shared.pipeline
    assert shared.info().articles == 2 and shared.info().updated_at is not None
    save_upload(corpus, "chess.txt", b"Chess final\n\nAnna Petrova won the chess final in Oslo.\n")
    progress: list[tuple[int, int]] = []
    fake_encoder.texts_encoded = 0
    report = shared.refresh(on_progress=lambda done, total: progress.append((done, total)))
    assert report.added == ("uploads/chess.txt",)
    # the one new passage, then (for the reader) its title and its sentence
    assert report.embedded_passages == 1 and fake_encoder.texts_encoded == 3
    assert progress == [(1, 1)]
    assert shared.pipeline is not before and shared.info().articles == 3
    assert shared.pipeline.retrieve("Who won the chess final?", k=1)[0].passage.doc_id == "uploads/chess.txt"
    # The old generation keeps answering for a session that still holds it.
    assert before.retrieve("tea prices", k=1)[0].passage.doc_id == "b.txt"


def test_rebuild_re_embeds_everything_in_a_new_generation(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    corpus = _corpus(tmp_path / "corpus")
    shared = SharedCorpus(corpus, index_dir=tmp_path / "index", encoder=fake_encoder)
    old_generation = shared.pipeline.index.manifest["generation"]
    report = shared.refresh(rebuild=True)
    assert report.rebuilt_because == "a rebuild was requested" and report.embedded_passages == report.passages
    assert shared.pipeline.index.manifest["generation"] == old_generation + 1
    assert sorted(p.name for p in (tmp_path / "index").glob("store-*")) == ["store-g000002.sqlite"]


def test_session_views_share_the_index_and_readers(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    corpus = _corpus(tmp_path / "corpus")
    shared = SharedCorpus(corpus, index_dir=tmp_path / "index", encoder=fake_encoder,
                          settings=PipelineSettings(read_k=2))  # fmt: skip
    view = shared.pipeline.with_settings(read_k=1, abstain_threshold=0.9)
    assert view.settings.read_k == 1 and shared.pipeline.settings.read_k == 2
    assert view.index is shared.pipeline.index and view._readers is shared.pipeline._readers


def test_questions_during_a_refresh_are_answered(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    corpus = _corpus(tmp_path / "corpus")
    shared = SharedCorpus(corpus, index_dir=tmp_path / "index", encoder=fake_encoder)
    errors: list[BaseException] = []
    stop = threading.Event()

    def asker() -> None:
        while not stop.is_set():
            try:
                assert shared.pipeline.retrieve("tea prices in Kenya", k=1)[0].passage.doc_id == "b.txt"
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
                return

    threads = [threading.Thread(target=asker) for _ in range(3)]
    for t in threads:
        t.start()
    for n in range(5):
        (corpus / f"new{n}.txt").write_text(f"Story {n}\n\nA new story number {n} about harbours.\n")
        shared.refresh()
    stop.set()
    for t in threads:
        t.join()
    assert not errors and shared.info().articles == 7
