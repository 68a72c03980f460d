"""Fine-tune the packaged MiniLM as a SQuAD span reader, resumably, on CPU or CUDA.

    >>> result = train_reader(train_path, dev_path, Path("runs/reader"), max_examples=25_000,
    ...                       max_minutes=50)
    >>> NeuralReader(Path("runs/reader/model"))  # safetensors + tokenizer + training.json

Calling again with the same arguments resumes from `out_dir/checkpoint/` (a larger `max_steps`
or a new `max_minutes` budget extends the run). The model is trained on SQuAD v1.1
(CC BY-SA 4.0, Rajpurkar et al., 2016).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embeddings.model_files import verified_model_dir
from rag.chunking import Passage
from rag.evaluation import exact_match, f1
from rag.neural_reader import MAX_QUESTION_TOKENS, NeuralReader, encode_windows, pad_batch
from rag.retrieval import Hit
from rag.squad import SquadQuestion, answer_span, load_squad, sample_questions, unanswerable_twin
from rag.swaps import LATEST_RULE, SWAP_RULES

log = logging.getLogger(__name__)

WARMUP_SHARE = 0.1
CHUNK_BATCHES = 100  # batches sorted by length together: little padding, still shuffled
LOG_EVERY = 20
# Arguments that define the data or the optimisation: a resume must not change them.
RESUME_KEYS = ("train_path", "max_examples", "seed", "batch_size", "lr", "max_length", "stride",
               "negatives", "init_from", "cut_negatives", "epochs", "exclude", "swap_negatives",
               "swap_rule")  # fmt: skip
# For checkpoints made before these existed.
ARGUMENT_DEFAULTS: dict[str, Any] = {
    "negatives": 0.0, "init_from": None, "cut_negatives": 0.0, "epochs": 1, "exclude": [],
    "swap_negatives": 0.0, "swap_rule": 1,
}  # fmt: skip


@dataclass(frozen=True)
class TrainWindow:
    input_ids: list[int]
    token_type_ids: list[int]
    start: int  # label token; 0 ([CLS]) when the answer is not inside this window
    end: int


def training_windows(
    tokenizer: Any,
    questions: Sequence[SquadQuestion],
    max_length: int,
    stride: int,
    *,
    negatives: float = 0.0,
    paragraphs: dict[str, list[str]] | None = None,
    seed: int = 0,
    cut_negatives: float = 0.0,
    swapped: Sequence[tuple[str, str]] = (),
) -> tuple[list[TrainWindow], int]:
    """Labelled windows of each question's paragraph, and how many questions were skipped.

    With `negatives` > 0, that share of questions is also paired with another paragraph of the
    same article (`paragraphs` by doc_id), labelled "no answer here" ([CLS]): the reader must
    learn to say no across many retrieved passages, and SQuAD paragraphs rarely teach that.
    With `cut_negatives` > 0, that share is also paired with its own paragraph less the
    sentence(s) holding the answer (`rag.squad.unanswerable_twin`), labelled "no answer": the passage is still
    about the question's subject, names and all, but no longer says the fact asked for, which is
    how a question the articles cannot answer usually looks. `swapped` are (question with a name
    swapped, paragraph) pairs from `rag.swaps`, also labelled "no answer".
    """
    answers = [answer_span(q) for q in questions]
    keep = [i for i, a in enumerate(answers) if a is not None]
    windows: list[TrainWindow] = []
    stream = encode_windows(
        tokenizer,
        [questions[i].question for i in keep],
        [questions[i].paragraph_text for i in keep],
        max_length=max_length,
        stride=stride,
    )
    for w in stream:
        answer = answers[keep[w.sample]]
        assert answer is not None
        start, end = _label(w.offsets, *answer)
        windows.append(TrainWindow(w.input_ids, w.token_type_ids, start, end))
    if negatives > 0 and paragraphs:
        rng = random.Random(seed + 7919)
        pairs: list[tuple[str, str]] = []
        for i in keep:
            q = questions[i]
            others = [p for p in paragraphs.get(q.doc_id, []) if p != q.paragraph_text]
            if others and rng.random() < negatives:
                other = rng.choice(others)
                if not any(a and a in other for a in q.answers):  # a true negative only
                    pairs.append((q.question, other))
        windows.extend(_no_answer_windows(tokenizer, pairs, max_length, stride))
    if cut_negatives > 0:
        rng = random.Random(seed + 104729)
        cut_pairs: list[tuple[str, str]] = []
        for i in keep:
            if rng.random() < cut_negatives and (rest := unanswerable_twin(questions[i])) is not None:
                cut_pairs.append((questions[i].question, rest))
        windows.extend(_no_answer_windows(tokenizer, cut_pairs, max_length, stride))
    if swapped:
        windows.extend(_no_answer_windows(tokenizer, swapped, max_length, stride))
    return windows, len(questions) - len(keep)


def _swapped(
    questions: Sequence[SquadQuestion],
    everyone: Sequence[SquadQuestion],
    share: float,
    seed: int,
    rule: int,
) -> list[tuple[str, str]]:
    """`rag.swaps` pairs for `questions`; replacements come from every question of the article."""
    from rag.aliases import AliasPair, alias_pairs
    from rag.reader import load_spacy
    from rag.swaps import Mention, question_mentions, swap_pairs

    docs = {q.doc_id for q in questions}
    pool_questions = [q for q in everyone if q.doc_id in docs]
    nlp = load_spacy()
    pooled = question_mentions(nlp, (q.question for q in pool_questions))
    pool_by_doc: dict[str, list[Mention]] = {}
    for q, found in zip(pool_questions, pooled, strict=True):
        pool_by_doc.setdefault(q.doc_id, []).extend(found)
    # The drawn questions are part of their articles' pool: NER reads each question once.
    by_id = {q.id: found for q, found in zip(pool_questions, pooled, strict=True)}
    missing = [q for q in questions if q.id not in by_id]
    by_id.update(
        zip([q.id for q in missing], question_mentions(nlp, (q.question for q in missing)), strict=True)
    )
    mentions = [by_id[q.id] for q in questions]
    aliases_by_doc: dict[str, list[AliasPair]] = {}
    if rule >= 2:  # the article's other names for a mention are never its replacement
        for doc, paragraphs in paragraphs_by_doc(pool_questions).items():
            aliases_by_doc[doc] = alias_pairs(paragraphs)
    pairs = swap_pairs(questions, mentions, pool_by_doc, share, seed, rule, aliases_by_doc)
    log.info("%d swapped-name questions as negatives (of %d questions)", len(pairs), len(questions))
    return pairs


def _no_answer_windows(
    tokenizer: Any, pairs: Sequence[tuple[str, str]], max_length: int, stride: int
) -> Iterator[TrainWindow]:
    """Windows of (question, context) pairs, every one labelled "no answer" ([CLS])."""
    stream = encode_windows(tokenizer, [p[0] for p in pairs], [p[1] for p in pairs],
                            max_length=max_length, stride=stride)  # fmt: skip
    return (TrainWindow(w.input_ids, w.token_type_ids, 0, 0) for w in stream)


Sample = Sequence[int | None]  # an earlier run's (seed, max_examples) or (seed, max_examples, after)


def drawn_ids(questions: Sequence[SquadQuestion], samples: Sequence[Sample]) -> set[str]:
    """Ids of the questions that runs with these samples drew, as `train_reader` does.

    (seed, max_examples) replays a run that drew from the whole file; (seed, max_examples, after)
    one that drew from what the first `after` samples of the list left (a run given those as its
    own `exclude`), so a chain of stages each on unseen questions stays one flat list.
    """
    drawn: list[set[str]] = []
    for position, sample in enumerate(samples):
        seed, max_examples, after = _sample(sample)
        if not 0 <= after <= position:
            raise ValueError(f"exclude sample {position + 1} ({seed}:{max_examples}@{after}) may only follow "
                             f"the {position} before it, not {after}")  # fmt: skip
        before = set().union(*drawn[:after])
        pool = [q for q in questions if q.id not in before] if before else questions
        drawn.append({q.id for q in draw(pool, seed, max_examples)})
    return set().union(*drawn)


def _sample(sample: Sample) -> tuple[int, int | None, int]:
    """(seed, max_examples, after) of a sample given as two or three values (after: 0)."""
    after: int | None
    if len(sample) == 2:
        seed, max_examples, after = sample[0], sample[1], 0
    elif len(sample) == 3:
        seed, max_examples, after = sample
    else:
        seed = after = None
    if seed is None or after is None:
        raise ValueError(f"an exclude sample is (seed, max_examples[, after]), got {list(sample)}")
    return seed, max_examples, after


def draw(questions: Sequence[SquadQuestion], seed: int, max_examples: int | None) -> list[SquadQuestion]:
    """A run's training sample: the questions in seeded order, the first `max_examples` of them."""
    order = list(questions)
    random.Random(seed).shuffle(order)
    return order[:max_examples] if max_examples else order


def paragraphs_by_doc(questions: Sequence[SquadQuestion]) -> dict[str, list[str]]:
    """Each article's distinct paragraphs, in order."""
    result: dict[str, dict[str, None]] = {}
    for q in questions:
        result.setdefault(q.doc_id, {})[q.paragraph_text] = None
    return {doc: list(paras) for doc, paras in result.items()}


def _label(offsets: Sequence[tuple[int, int] | None], s: int, e: int) -> tuple[int, int]:
    ctx = [i for i, o in enumerate(offsets) if o is not None]
    first, last = offsets[ctx[0]], offsets[ctx[-1]]
    assert first is not None and last is not None
    if not (first[0] <= s and last[1] >= e):
        return 0, 0
    start = next(i for i in reversed(ctx) if offsets[i][0] <= s)  # type: ignore[index]
    end = next(i for i in ctx if offsets[i][1] >= e)  # type: ignore[index]
    return start, max(start, end)


def batch_plan(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Window indices per batch for one epoch: shuffled, length-sorted within chunks, shuffled."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    chunk = batch_size * CHUNK_BATCHES
    for first in range(0, len(order), chunk):
        part = sorted(order[first : first + chunk], key=lambda i: lengths[i])
        batches.extend(part[k : k + batch_size] for k in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _linear_schedule(total: int) -> Callable[[int], float]:
    warmup = max(1, math.ceil(WARMUP_SHARE * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def swap_in(tmp: Path, final: Path) -> None:
    """Replace directory `final` by `tmp` so a crash leaves one complete copy (final or .old)."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as file:
        json.dump(data, file, indent=2)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def evaluate_reader(reader: NeuralReader, questions: Sequence[SquadQuestion]) -> dict[str, float]:
    """SQuAD EM/F1 (fractions) of the reader's top answer given each question's gold paragraph."""
    em = f = 0.0
    for q in questions:
        passage = Passage(q.doc_id, 0, len(q.paragraph_text), q.paragraph_text)
        answers = reader.read(q.question, [Hit(passage, q.doc_id, 1.0, 1)])
        prediction = answers[0].text if answers else ""
        golds = list(dict.fromkeys(q.answers))
        em += exact_match(prediction, golds)
        f += f1(prediction, golds)
    n = max(1, len(questions))
    return {"exact_match": em / n, "f1": f / n}


def train_reader(
    train_path: Path | str,
    dev_path: Path | str,
    out_dir: Path | str,
    *,
    max_examples: int | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    lr: float = 5e-5,
    max_length: int = 384,
    stride: int = 128,
    eval_examples: int = 500,
    checkpoint_every: int = 200,
    device: str | None = None,
    log_every: int = LOG_EVERY,
    negatives: float = 0.0,
    init_from: Path | str | None = None,
    cut_negatives: float = 0.0,
    epochs: int = 1,
    exclude: Sequence[Sample] = (),
    swap_negatives: float = 0.0,
    swap_rule: int = LATEST_RULE,
) -> dict[str, Any]:
    """Train (or resume) a span reader; returns the record also written to model/training.json.

    `init_from` starts from a trained reader's folder instead of the packaged MiniLM (a second
    stage, e.g. with `negatives`): a torch folder, or a shipped ONNX one such as rag/models/reader
    (turned back into torch once, into out_dir/init, by rag.onnx_import). `negatives` is the share
    of questions also paired with another paragraph of their article as a "no answer" example;
    `cut_negatives` the share also paired with their own paragraph less the answer's sentence;
    `swap_negatives` the share also asked with one of their names swapped for another of the
    article's (`rag.swaps`, by its `swap_rule`), against their own paragraph.
    `epochs` passes over the windows (the learning rate decays over all of them); `max_steps`, when
    given, sets the number of steps instead. `exclude` lists earlier runs' samples (`drawn_ids`): the
    questions they drew from the same train file are left out, so a further stage reads only
    questions no stage before it saw.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    for name, value in (("batch_size", batch_size), ("checkpoint_every", checkpoint_every),
                        ("log_every", log_every), ("epochs", epochs)):  # fmt: skip
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples}")
    for name, share in (("negatives", negatives), ("cut_negatives", cut_negatives),
                        ("swap_negatives", swap_negatives)):  # fmt: skip
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {share}")
    if swap_rule not in SWAP_RULES:
        raise ValueError(f"swap_rule must be one of {SWAP_RULES}, got {swap_rule}")
    if init_from is not None and not (Path(init_from) / "config.json").is_file():
        raise ValueError(f"init_from must be a trained reader folder (config.json missing): '{init_from}'")
    if max_length - MAX_QUESTION_TOKENS - 3 <= stride:
        raise ValueError(f"stride must leave room for context: max_length {max_length}, stride {stride}")
    arguments = {
        "train_path": str(train_path), "dev_path": str(dev_path), "max_examples": max_examples,
        "max_steps": max_steps, "max_minutes": max_minutes, "seed": seed, "batch_size": batch_size,
        "lr": lr, "max_length": max_length, "stride": stride, "eval_examples": eval_examples,
        "checkpoint_every": checkpoint_every, "negatives": negatives,
        "init_from": str(init_from) if init_from is not None else None, "cut_negatives": cut_negatives,
        "epochs": epochs, "exclude": [list(sample) for sample in exclude], "swap_negatives": swap_negatives,
        "swap_rule": swap_rule,
    }  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    if not ckpt.exists() and (out / "checkpoint.old").exists():
        ckpt = out / "checkpoint.old"  # a crash between the two renames of swap_in
    state: dict[str, Any] = {"step": 0, "epoch": 0, "position": 0, "train_seconds": 0.0}
    if (ckpt / "state.json").is_file():
        state = json.loads((ckpt / "state.json").read_text())
        previous = {**ARGUMENT_DEFAULTS, **state["arguments"]}
        changed = {k: (previous[k], arguments[k]) for k in RESUME_KEYS
                   if previous[k] != arguments[k]}  # fmt: skip
        if changed:
            raise ValueError(f"checkpoint in '{ckpt}' was made with other arguments {changed}; "
                             "use a new out_dir")  # fmt: skip
    began = time.monotonic()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    questions = list(load_squad(Path(train_path)).questions)
    paragraphs = paragraphs_by_doc(questions) if negatives > 0 else None
    everyone = questions
    seen = drawn_ids(questions, exclude)
    questions = [q for q in questions if q.id not in seen]
    pool = len(questions)
    questions = draw(questions, seed, max_examples)
    base = Path(init_from) if init_from is not None else verified_model_dir()
    if init_from is not None and not (base / "model.safetensors").is_file():
        base = _torch_init(base, out / "init")  # a shipped ONNX reader: its exact weights, in torch
    tokenizer = AutoTokenizer.from_pretrained(base)
    swapped = _swapped(questions, everyone, swap_negatives, seed, swap_rule) if swap_negatives > 0 else []
    windows, skipped = training_windows(tokenizer, questions, max_length, stride,
                                        negatives=negatives, paragraphs=paragraphs, seed=seed,
                                        cut_negatives=cut_negatives, swapped=swapped)  # fmt: skip
    lengths = [len(w.input_ids) for w in windows]
    per_epoch = math.ceil(len(windows) / batch_size)
    total = max_steps or per_epoch * epochs
    log.info("%d questions (%d skipped), %d windows, %d steps per epoch, %d steps planned",
             len(questions), skipped, len(windows), per_epoch, total)  # fmt: skip

    torch.manual_seed(seed)
    # float32 whatever the stored precision (an fp16 copy of the base, as carried to a GPU machine)
    model = AutoModelForQuestionAnswering.from_pretrained(
        ckpt if (ckpt / "state.json").is_file() else base, dtype=torch.float32
    )
    model.to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(total))
    resumed_from = int(state["step"])
    if resumed_from:
        trainer = torch.load(ckpt / "trainer.pt", map_location=dev, weights_only=False)
        optimizer.load_state_dict(trainer["optimizer"])
        scheduler.load_state_dict(trainer["scheduler"])
        torch.set_rng_state(trainer["torch_rng"])
        random.setstate(trainer["python_rng"])
        if dev.type == "cuda" and trainer.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(trainer["cuda_rng"])
        log.info("resumed from step %d (epoch %d, batch %d)", resumed_from, state["epoch"], state["position"])

    def save_checkpoint() -> None:
        tmp = out / f".checkpoint-tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        torch.save({
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if dev.type == "cuda" else None,
            "python_rng": random.getstate(),
        }, tmp / "trainer.pt")  # fmt: skip
        _write_json(tmp / "state.json", {**state, "arguments": arguments})
        swap_in(tmp, out / "checkpoint")

    deadline = began + 60 * max_minutes if max_minutes is not None else None
    pad_id = tokenizer.pad_token_id or 0
    losses: list[float] = []
    seen_windows = seen_tokens = 0
    window_loss: list[float] = []
    tick = loop_began = time.monotonic()
    stopped = "steps"
    while state["step"] < total:
        plan = batch_plan(lengths, batch_size, seed, state["epoch"])
        while state["position"] < len(plan) and state["step"] < total:
            if deadline is not None and time.monotonic() >= deadline:
                stopped = "time"
                break
            rows = [windows[i] for i in plan[state["position"]]]
            batch = pad_batch([r.input_ids for r in rows], [r.token_type_ids for r in rows], pad_id)
            batch = {k: v.to(dev) for k, v in batch.items()}
            labels = {
                "start_positions": torch.tensor([r.start for r in rows], device=dev),
                "end_positions": torch.tensor([r.end for r in rows], device=dev),
            }
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                loss = model(**batch, **labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["position"] += 1
            value = loss.item()
            losses.append(value)
            window_loss.append(value)
            seen_windows += len(rows)
            seen_tokens += sum(len(r.input_ids) for r in rows)
            if state["step"] % log_every == 0 or state["step"] == total:
                now = time.monotonic()
                state["train_seconds"] += now - tick
                log.info("step %d/%d epoch %d loss %.4f lr %.2e | %.2f windows/s %.0f tokens/s",
                         state["step"], total, state["epoch"], sum(window_loss) / len(window_loss),
                         scheduler.get_last_lr()[0], seen_windows / (now - loop_began),
                         seen_tokens / (now - loop_began))  # fmt: skip
                tick, window_loss = now, []
            if state["step"] % checkpoint_every == 0:
                save_checkpoint()
        if stopped == "time":
            break
        if state["position"] >= len(plan):
            state["epoch"] += 1
            state["position"] = 0
    state["train_seconds"] += time.monotonic() - tick
    loop_seconds = max(1e-9, time.monotonic() - loop_began)
    save_checkpoint()
    train_seconds = time.monotonic() - began

    model_dir = out / "model"
    tmp = out / f".model-tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.eval().save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    swap_in(tmp, model_dir)
    metrics = {"exact_match": None, "f1": None}
    if eval_examples > 0:
        dev_questions = load_squad(Path(dev_path)).questions
        sample = sample_questions(dev_questions, min(eval_examples, len(dev_questions)), seed=seed)
        reader = NeuralReader(model_dir, max_length=max_length, stride=stride, device=str(dev))
        metrics = evaluate_reader(reader, sample)  # type: ignore[assignment]
        log.info("dev EM %.3f F1 %.3f on %d questions", metrics["exact_match"], metrics["f1"], len(sample))
    k = max(1, min(len(losses) // 3, LOG_EVERY))
    result = {
        "arguments": arguments,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "train_data": "SQuAD v1.1 train (CC BY-SA 4.0, Rajpurkar et al., 2016)",
        "questions": len(questions),
        "excluded_questions": len(seen),
        "pool_questions": pool,
        "skipped_questions": skipped,
        "windows": len(windows),
        "no_answer_windows": sum(1 for w in windows if w.start == 0),
        "steps": state["step"],
        "planned_steps": total,
        "epoch": state["epoch"],
        "resumed_from_step": resumed_from,
        "stopped": stopped,
        "finished": state["step"] >= total,
        "seconds": round(train_seconds, 1),
        "train_seconds_total": round(state["train_seconds"], 1),
        "windows_per_second": round(seen_windows / loop_seconds, 3),
        "tokens_per_second": round(seen_tokens / loop_seconds, 1),
        "loss_first": sum(losses[:k]) / k if losses else None,
        "loss_last": sum(losses[-k:]) / k if losses else None,
        "dev_examples": eval_examples,
        "dev_exact_match": metrics["exact_match"],
        "dev_f1": metrics["f1"],
        "device": str(dev),
    }
    _write_json(model_dir / "training.json", result)
    return result


def _torch_init(shipped: Path, folder: Path) -> Path:
    """`folder` holding the shipped ONNX reader's weights as torch ones (made once, then reused)."""
    from rag.onnx_import import WEIGHTS, torch_folder_from_onnx

    if (folder / WEIGHTS).is_file():
        return folder
    log.info("turning the ONNX reader in '%s' back into torch weights in '%s'", shipped, folder)
    return torch_folder_from_onnx(shipped, folder)
