"""The seed article end to end through cleaning and chunking: no boilerplate, no lost sentence."""

from __future__ import annotations

import re

from embeddings.tokens import default_counter
from rag.chunking import Chunker, split_sentences
from rag.documents import parse_article
from tests.conftest import SEEDS

SEED = SEEDS / "000_cf52fe43d28daad2.txt"
BOILERPLATE = [
    "HomeWorld",
    "FansLike",
    "FollowersFollow",
    "SubscribersSubscribe",
    "Stay Connected",
    "Must Read",
    "Related News",
    "LEAVE A REPLY",
    "Please enter your comment",
    "Please enter your name here",
    "Facing Duhamel",
    "10:45",
]


def test_no_boilerplate_in_any_passage_and_every_body_sentence_in_one() -> None:
    raw = SEED.read_text(encoding="utf-8")
    article = parse_article(SEED.name, SEED.read_bytes())
    passages = Chunker(default_counter(), chunk_size=200, chunk_overlap=1).split(article.doc_id, article.text)
    for passage in passages:
        assert article.text[passage.start : passage.end] == passage.text
        for junk in BOILERPLATE:
            assert junk not in passage.text, junk
    body_start = raw.index("Syrian government forces clashed")
    body_end = raw.index("Stay Connected")
    body = raw[body_start:body_end]
    body_lines = [
        line for line in body.split("\n") if line.strip() and not re.search(r"Facing Duhamel|^\d+:\d+$", line)
    ]
    for line in body_lines:
        for start, end in split_sentences(line):
            sentence = line[start:end]
            assert any(sentence in p.text for p in passages), sentence
