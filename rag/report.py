"""`rag report`: regenerate docs/EVALUATION.md and docs/evaluation.json from measurements.

Nothing in those files is typed by hand: every number comes from one run of this module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag import machine
from rag.compare import compare_readers, render_readers
from rag.confidence import SHOWN, described
from rag.eval_runner import reader_alone, run_questions, squad_corpus
from rag.evaluation import load_questions, load_span_questions, summarize, threshold_sweep
from rag.neural_reader import packaged_model
from rag.pipeline import PipelineSettings, QAPipeline
from rag.squad import load_squad, sample_questions
from rag.tuning import ABSTENTION_TARGET, best_fusion, choose_threshold, sweep_fusion

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SQUAD_DEV = SHARED / "squad-v1.1-dev" / "dev-v1.1.json.zip"
BBC_ARCHIVE = SHARED / "bbc-news" / "bbc.tar.gz"
SQUAD_SAMPLE, SQUAD_SEED = 1000, 0
READER_SAMPLE = 2000  # SQuAD dev questions for comparing readers on the gold paragraph
HELDOUT_FILE = "heldout_questions.jsonl"  # beside questions.jsonl; nothing is chosen on it
SQUAD_REFERENCES = (
    "Published reference points on SQuAD v1.1 dev (from the dataset's README): reader given the "
    "gold paragraph: distilbert-base-cased-distilled-squad EM 79.1-79.6 / F1 86.8-87.1; "
    "bert-large-uncased-wwm-finetuned-squad EM 86.9 / F1 93.2; DrQA reader EM 69.4 / F1 78.9; "
    "human EM 82.3 / F1 91.2. Open-domain over all of Wikipedia: DrQA EM 29.5; BERTserini EM 41.5 / F1 49.5."
)


def build_report(
    seeds: Path,
    bbc_corpus: Path | None,
    *,
    squad_sample: int = SQUAD_SAMPLE,
    reader_sample: int = READER_SAMPLE,
    settings: PipelineSettings | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    settings = settings or PipelineSettings()
    started = time.perf_counter()
    result: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "settings": asdict(settings),
        "threshold_in_use": settings.threshold,
    }
    log("seed question set ...")
    qa = QAPipeline.from_corpus(seeds, settings=settings, log=log)
    questions = load_questions(seeds / "questions.jsonl").questions
    seed = run_questions(qa, questions)
    result["seed"] = {
        "summary": described(seed),
        "sweep": threshold_sweep(seed["per_question"]),
        "fusion": sweep_fusion(qa, questions),
    }
    result["seed_per_question"] = seed["per_question"]
    if (seeds / HELDOUT_FILE).is_file():
        log("held-out seed questions ...")
        result["seed_heldout"] = heldout_summary(
            run_questions(qa, load_questions(seeds / HELDOUT_FILE).questions)
        )
    if bbc_corpus is not None:
        log("BBC question set ...")
        bbc_qa = QAPipeline.from_corpus(
            bbc_corpus, settings=settings, encoder=qa.encoder, log=log, progress=True
        )
        bbc_questions = load_span_questions(Path("benchmarks/bbc_questions.jsonl"), bbc_corpus).questions
        result["bbc"] = {
            "summary": described(run_questions(bbc_qa, bbc_questions)),
            "fusion": sweep_fusion(bbc_qa, bbc_questions),
            "articles": bbc_qa.index.store.count()[0],
            "passages": bbc_qa.index.store.count()[1],
        }
    if squad_sample and SQUAD_DEV.is_file():
        log(f"SQuAD v1.1 dev, {squad_sample} questions (seed {SQUAD_SEED}) ...")
        squad = load_squad(SQUAD_DEV)
        chosen = sample_questions(squad.questions, squad_sample, SQUAD_SEED)
        squad_qa = QAPipeline.from_corpus(
            squad_corpus(squad), settings=settings, encoder=qa.encoder, log=log, progress=True
        )
        as_questions = [q.as_question() for q in chosen]
        result["squad"] = {
            "sample": squad_sample,
            "seed": SQUAD_SEED,
            "documents": len(squad.documents),
            "passages": squad_qa.index.store.count()[1],
            "end_to_end": described(run_questions(squad_qa, as_questions)),
            "reader_alone": reader_alone(squad_qa, chosen),
            "fusion": sweep_fusion(squad_qa, as_questions),
        }
    readers = ["heuristic"] + (["neural", "hybrid"] if packaged_model() else [])
    squad_for_readers = (
        sample_questions(squad.questions, min(reader_sample, len(squad.questions)), SQUAD_SEED)
        if "squad" in result and reader_sample
        else []
    )
    result["readers"] = compare_readers(
        qa,
        questions,
        readers,
        squad_qa=squad_qa if "squad" in result else None,
        squad_questions=squad_for_readers,
        seed_records={settings.reader: result["seed_per_question"]},
        log=log,
    )
    result["recommended"] = recommend(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def heldout_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The held-out set's summary, and one per batch: the questions whose ids share a prefix
    ("held-001", "blind-001"), each written at its own time (benchmarks/README.md says when)."""
    records = summary["per_question"]
    prefixes = sorted({str(r["id"]).rsplit("-", 1)[0] for r in records})
    return {
        "summary": described(summary),
        "batches": {
            p: described(summarize([r for r in records if str(r["id"]).rsplit("-", 1)[0] == p]))
            for p in prefixes
        },
    }


def recommend(result: dict[str, Any]) -> dict[str, Any]:
    """Defaults backed by this run: the keyword weight with the best mean hit@3 over every question
    set, and the abstention threshold from `choose_threshold` on the fixed set."""
    tables = [result[name]["fusion"] for name in ("seed", "bbc") if name in result]
    if "squad" in result:
        tables.append(result["squad"]["fusion"])
    weights = sorted({row["keyword_weight"] for row in tables[0] if row["fusion"] == "linear"})

    def mean_hit3(weight: float) -> float:
        rows = [
            r for table in tables for r in table if r["fusion"] == "linear" and r["keyword_weight"] == weight
        ]
        return sum(r["hit@3"] for r in rows) / len(rows)

    best_weight = max(weights, key=lambda w: (round(mean_hit3(w), 6), -abs(w - 0.5)))
    return {
        "keyword_weight": best_weight,
        "mean_hit_at_3": mean_hit3(best_weight),
        "threshold": choose_threshold(result["seed_per_question"]),
        "reader": result["readers"]["best"] if "readers" in result else None,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _fusion_table(rows: list[dict[str, Any]]) -> list[str]:
    best = best_fusion(rows)
    lines = [
        "| fusion | keyword weight | hit@1 | hit@3 | hit@5 | hit@10 | MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = " **(best)**" if r is best else ""
        lines.append(
            f"| {r['fusion']} | {r['keyword_weight']:.1f}{mark} | {_pct(r['hit@1'])} | {_pct(r['hit@3'])} | "
            f"{_pct(r['hit@5'])} | {_pct(r['hit@10'])} | {r['mrr']:.3f} |"
        )
    return lines


def _summary_table(s: dict[str, Any]) -> list[str]:
    no_answer = s["no_answer"]
    return [
        "| metric | value |",
        "|---|---|",
        f"| questions (answerable) | {s['n_questions']} ({s['n_answerable']}) |",
        f"| exact match | {_pct(s['exact_match'])} |",
        f"| F1 | {_pct(s['f1'])} |",
        f"| F1, {s['f1_interval_level']:.0%} confidence interval (bootstrap over the answerable questions) | "
        + (" to ".join(_pct(v) for v in s["f1_interval"]) if s["f1_interval"] else "n/a")
        + " |",
        f"| F1 if it never abstained (the best answer to every answerable question) | "
        f"{_pct(s['f1_never_abstaining'])} |",
        f"| F1 of the best of the first {SHOWN} candidates (had the right one of those listed been chosen) | "
        f"{_pct(s['f1_best_shown'])} |",
        "| hit@1 / @3 / @5 / @10 | " + " / ".join(_pct(s["hit_at"][k]) for k in ("1", "3", "5", "10")) + " |",
        f"| MRR | {s['mrr']:.3f} |" if s["mrr"] is not None else "| MRR | n/a |",
        f"| unanswerable abstained | {no_answer['correct']}/{no_answer['n']} "
        f"({_pct(no_answer['accuracy'])}) |",
        f"| false abstention rate | {_pct(s['false_abstention_rate'])} |",
        f"| latency p50 / p95 | {s['latency_ms']['p50']:.0f} ms / {s['latency_ms']['p95']:.0f} ms |",
    ]


def _heldout_section(h: dict[str, Any]) -> list[str]:
    lines = [
        f"## Held-out questions on the seed article (`seeds/{HELDOUT_FILE}`, end to end)",
        "",
        "Written blind: their authors saw the article and the fixed set's wording (so as not to repeat "
        "it), never the system's answers. The threshold and weights are never chosen on them. The fixed "
        "set above is the one the rules and the threshold were developed against, so these estimate "
        "better what a user's new questions get; best of all a batch whose failures nobody has read "
        "yet. `benchmarks/README.md` says how each batch was written and what it has been used for.",
        "",
        *_summary_table(h["summary"]),
        "",
        "| batch | questions (answerable) | F1 | 95% confidence interval | F1 if it never abstained "
        f"| F1, best of the first {SHOWN} candidates | unanswerable abstained |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in h["batches"].items():
        interval = " to ".join(_pct(v) for v in s["f1_interval"]) if s["f1_interval"] else "n/a"
        none = s["no_answer"]
        lines.append(
            f"| `{name}-` | {s['n_questions']} ({s['n_answerable']}) | {_pct(s['f1'])} | {interval} | "
            f"{_pct(s['f1_never_abstaining'])} | {_pct(s['f1_best_shown'])} | {none['correct']}/{none['n']} |"
        )
    return [*lines, ""]


def render_markdown(r: dict[str, Any]) -> str:
    out = [
        "# Evaluation",
        "",
        f"Generated by `rag report` on {r['generated_at']} ({r['machine']}) in {r['seconds']} s. "
        "Do not edit by hand: run `make report` (or `rag report`) again.",
        "",
        f"Settings: `{json.dumps(r['settings'])}`",
        "",
        "## The fixed question set (`seeds/questions.jsonl`, end to end)",
        "",
        *_summary_table(r["seed"]["summary"]),
        "",
        "### Abstention threshold: answered accuracy against coverage",
        "",
        "Every threshold is in `docs/evaluation.json`; here, steps of 0.05. Coverage is the share of all "
        "questions answered; answered F1 counts an answered unanswerable question as 0.",
        "",
        "| threshold | coverage | answered EM | answered F1 | overall accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in _every(r["seed"]["sweep"], 0.05):
        out.append(
            f"| {row['threshold']:.3f} | {_pct(row['coverage'])} | {_pct(row['answered_em'])} | "
            f"{_pct(row['answered_f1'])} | {_pct(row['accuracy'])} |"
        )
    chosen = r["recommended"]["threshold"]
    if chosen:
        out += [
            "",
            f"Policy: abstain on at least {ABSTENTION_TARGET:.0%} of unanswerable questions, and answer "
            f"as much as that allows. On this set that is threshold **{chosen['threshold']:.3f}** "
            f"({_pct(chosen['unanswerable_abstained'])} of unanswerable questions abstained, F1 on "
            f"answerable questions {_pct(chosen['f1_answerable'])}). The default in use: "
            f"**{r.get('threshold_in_use', r['settings']['abstain_threshold']):.3f}** "
            f"(reader {r['settings']['reader']}).",
        ]
    out += ["", "### Retrieval fusion on the fixed set", "", *_fusion_table(r["seed"]["fusion"]), ""]
    if "seed_heldout" in r:
        out += _heldout_section(r["seed_heldout"])
    if "bbc" in r:
        b = r["bbc"]
        out += [
            f"## BBC News: {len([1]) and b['summary']['n_questions']} held-out questions "
            f"over {b['articles']} articles ({b['passages']} passages)",
            "",
            "Questions in `benchmarks/bbc_questions.jsonl` (answers stored as offsets; the articles "
            "are read from `../shared/datasets/bbc-news/`).",
            "",
            *_summary_table(b["summary"]),
            "",
            "### Retrieval fusion on BBC",
            "",
            *_fusion_table(b["fusion"]),
            "",
        ]
    if "squad" in r:
        s = r["squad"]
        alone = s["reader_alone"]
        out += [
            f"## SQuAD v1.1 dev: a fixed sample of {s['sample']} questions (seed {s['seed']})",
            "",
            f"Each of the {s['documents']} Wikipedia articles is one document ({s['passages']} passages); "
            "every question is asked against the whole corpus.",
            "",
            *_summary_table(s["end_to_end"]),
            "",
            f"Reader alone (given the question's own paragraph): EM {_pct(alone['exact_match'])}, "
            f"F1 {_pct(alone['f1'])}, p50 {alone['latency_ms_p50']:.0f} ms.",
            "",
            SQUAD_REFERENCES,
            "",
            "### Retrieval fusion on SQuAD",
            "",
            *_fusion_table(s["fusion"]),
            "",
        ]
    if "readers" in r:
        out += render_readers(r["readers"], r["settings"]["reader"])
    rec = r["recommended"]
    out += [
        "## Defaults chosen from these measurements",
        "",
        f"- Keyword weight of the linear fusion: the best mean hit@3 over every question set above is at "
        f"**{rec['keyword_weight']:.1f}** ({_pct(rec['mean_hit_at_3'])}); the default in use is "
        f"**{r['settings']['keyword_weight']:.1f}**.",
        "- Abstention threshold: see the policy under the fixed question set.",
        "",
    ]
    return "\n".join(out)


def _every(rows: list[dict[str, Any]], step: float) -> list[dict[str, Any]]:
    """The first sweep row at or above each multiple of `step` (rows ascend by threshold)."""
    picked: list[dict[str, Any]] = []
    mark = 0.0
    for row in rows:
        if row["threshold"] >= mark:
            picked.append(row)
            mark = (int(row["threshold"] / step) + 1) * step
    return picked


def write_report(result: dict[str, Any], docs: Path) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "evaluation.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (docs / "EVALUATION.md").write_text(render_markdown(result) + "\n", encoding="utf-8")
