"""Train the span reader on a lent GPU machine (the `device` tool) and bring it back, in one call.

The device tool moves at most 64 MiB of working tree to the machine and 64 MiB back (16 MiB a
file, 8 files), and the machine reaches no network. The fp32 weights (MiniLM base or trained
reader, about 90 MB) fit neither way, so they travel in float16: the training run starts from a
float16 copy of the packaged MiniLM (loaded back as float32) and its result comes back as a
float16 copy cut into parts. The evaluation on the machine measures the reader both before and
after that rounding, so the cost of the trip is on record.

Here, once per session (the carried folder, runs/device/, is git-ignored; never commit it):

    .venv/bin/python -m scripts.device_reader prepare
    mv rag/models/reader/model.onnx /tmp/   # tracked, 45 MB: with the carried base it would pass the 64 MiB

Then one `run` call, carrying runs/device (python3 there has torch, transformers, tokenizers),
with timeout_s 590 (training stops itself after --max-minutes, 7, then evaluates and packs):

    set -o pipefail; export PYTHONUNBUFFERED=1
    python3 -m scripts.device_reader train --out-files $OUT 2>&1 | tee $OUT/train.log

Back here: `git checkout rag/models/reader/model.onnx`, then

    .venv/bin/python -m scripts.device_reader unpack <files_at> runs/gpu/model

gives a float32 torch reader folder (with its training.json) for `rag.model_card.ship_reader`.
Pass it `stages=[<that training.json>]`: the run started from the MiniLM itself (a float16 copy
of it), not from an earlier stage, so it is stage 1 of its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
CARRY = Path("runs/device")  # relative to the repository root, as `run` carries it
BASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
              "special_tokens_map.json")  # fmt: skip
READER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "training.json")
WEIGHTS = "model.safetensors"
PART_BYTES = 15 * 1024 * 1024  # the device returns files of at most 16 MiB
MANIFEST = "manifest.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cast_weights(src: Path, dst: Path, dtype: str) -> None:
    """`src`'s safetensors with every floating-point tensor cast to `dtype` ("float16", "float32")."""
    import torch
    from safetensors.torch import load_file, save_file

    to = getattr(torch, dtype)
    tensors = load_file(str(src))
    save_file({k: v.to(to) if v.is_floating_point() else v for k, v in tensors.items()}, str(dst),
              metadata={"format": "pt"})  # fmt: skip


def pack(model_dir: Path, out: Path, extra: dict[str, Any] | None = None) -> list[Path]:
    """The reader in `model_dir` as float16, tarred and cut into parts of PART_BYTES in `out`,
    with a manifest holding each part's sha256 (and `extra`)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in READER_FILES:
            if (model_dir / name).is_file():
                tar.add(model_dir / name, arcname=name)
        half = out / f".{WEIGHTS}.fp16"
        out.mkdir(parents=True, exist_ok=True)
        cast_weights(model_dir / WEIGHTS, half, "float16")
        tar.add(half, arcname=WEIGHTS)
        half.unlink()
    data = buffer.getvalue()
    parts, digests = [], {}
    for i in range(0, len(data), PART_BYTES):
        part, chunk = out / f"reader.tar.{i // PART_BYTES:02d}", data[i : i + PART_BYTES]
        part.write_bytes(chunk)
        parts.append(part)
        digests[part.name] = sha256_bytes(chunk)
    manifest = {"parts": digests, "sha256": sha256_bytes(data), **(extra or {})}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return parts


def unpack(files: Path, dest: Path) -> dict[str, Any]:
    """Check and join the parts in `files`, and write a float32 torch reader folder at `dest`."""
    manifest_path = files / MANIFEST
    if not manifest_path.is_file():
        raise click.ClickException(f"no {MANIFEST} in '{files}': not the files of a device run")
    manifest = json.loads(manifest_path.read_text())
    chunks = []
    for name, digest in sorted(manifest["parts"].items()):
        part = files / name
        if not part.is_file():
            raise click.ClickException(f"part '{name}' is missing from '{files}'")
        chunk = part.read_bytes()
        if sha256_bytes(chunk) != digest:
            raise click.ClickException(f"part '{name}' does not match its sha256: the transfer broke")
        chunks.append(chunk)
    data = b"".join(chunks)
    if sha256_bytes(data) != manifest["sha256"]:
        raise click.ClickException("the joined parts do not match the manifest's sha256")
    staging = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(staging, filter="data")
    wide = staging / f".{WEIGHTS}.fp32"  # not over the file being read
    cast_weights(staging / WEIGHTS, wide, "float32")
    wide.replace(staging / WEIGHTS)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dict(manifest)


@click.group()
def main() -> None:
    """Train the span reader on a lent GPU machine: prepare here, train there, unpack here."""


@main.command()
@click.option("--into", type=click.Path(path_type=Path, file_okay=False), default=ROOT / CARRY,
              show_default=True)  # fmt: skip
@click.option("--train", "train_path", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=DATASETS / "squad-v1.1-train" / "train-v1.1.rebuilt.json.gz")  # fmt: skip
@click.option("--dev", "dev_path", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=DATASETS / "squad-v1.1-dev" / "dev-v1.1.json.zip")  # fmt: skip
def prepare(into: Path, train_path: Path, dev_path: Path) -> None:
    """Write the folder to carry: a float16 MiniLM, the SQuAD files, blingfire's library."""
    import blingfire

    from embeddings.model_files import verified_model_dir

    base = verified_model_dir()
    (into / "base").mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES:
        shutil.copy2(base / name, into / "base" / name)
    cast_weights(base / WEIGHTS, into / "base" / WEIGHTS, "float16")
    (into / "data").mkdir(exist_ok=True)
    shutil.copy2(train_path, into / "data" / "train.json.gz")
    shutil.copy2(dev_path, into / "data" / "dev.json.zip")
    # blingfire splits sentences through its own shared library; its 90 MB of tokenizer models
    # are not needed for that and stay behind.
    library = Path(blingfire.__file__).parent
    (into / "blingfire").mkdir(exist_ok=True)
    for name in ("__init__.py", "libblingfiretokdll.so"):
        shutil.copy2(library / name, into / "blingfire" / name)
    size = sum(p.stat().st_size for p in into.rglob("*") if p.is_file())
    click.echo(f"{into}: {size / 2**20:.1f} MiB to carry; the tree must travel without "
               "rag/models/reader/model.onnx (64 MiB in all)")  # fmt: skip


@main.command()
@click.option("--carry", type=click.Path(path_type=Path, file_okay=False, exists=True), default=CARRY,
              show_default=True)  # fmt: skip
@click.option("--out-files", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Where the parts and manifest go ($OUT on the device).")  # fmt: skip
@click.option("--run", "run_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("/tmp/reader-run"), show_default=True)  # fmt: skip
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--negatives", type=float, default=0.2, show_default=True)
@click.option("--cut-negatives", type=float, default=0.5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-examples", type=int, default=None, help="Default: every SQuAD train question.")
@click.option("--max-steps", type=int, default=None, help="Smoke runs.")
@click.option("--max-minutes", type=float, default=7.0, show_default=True,
              help="Stop training (checkpointed) after this long, to leave time to evaluate and pack.")
@click.option("--eval-examples", type=int, default=2000, show_default=True)
@click.option("--max-length", type=int, default=384, show_default=True)
@click.option("--stride", type=int, default=128, show_default=True)
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
def train(carry: Path, out_files: Path, run_dir: Path, epochs: int, batch_size: int, lr: float,
          negatives: float, cut_negatives: float, seed: int, max_examples: int | None,
          max_steps: int | None, max_minutes: float, eval_examples: int, max_length: int, stride: int,
          device: str | None) -> None:  # fmt: skip
    """On the GPU machine: rag's train_reader from the carried base, then pack the result."""
    import logging

    # rag.training needs blingfire (sentences), numpy, torch and transformers, not faiss or the
    # HTML extractor; the GPU machine lacks blingfire alone, so it is carried.
    sys.path.insert(0, str(carry.resolve()))
    from rag.training import evaluate_reader, train_reader

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    began = time.monotonic()
    record = train_reader(carry / "data" / "train.json.gz", carry / "data" / "dev.json.zip", run_dir,
                          init_from=carry / "base", epochs=epochs, batch_size=batch_size, lr=lr,
                          negatives=negatives, cut_negatives=cut_negatives, seed=seed,
                          max_examples=max_examples, max_steps=max_steps, max_minutes=max_minutes,
                          eval_examples=eval_examples, max_length=max_length, stride=stride,
                          checkpoint_every=1000, device=device)  # fmt: skip
    extra: dict[str, Any] = {"training": record}
    pack(run_dir / "model", out_files, extra)
    back = run_dir / "back"
    unpack(out_files, back)  # what the trip gives back, measured here on the same sample
    if eval_examples > 0:
        from rag.neural_reader import NeuralReader
        from rag.squad import load_squad, sample_questions

        dev_questions = load_squad(carry / "data" / "dev.json.zip").questions
        sample = sample_questions(dev_questions, min(eval_examples, len(dev_questions)), seed=seed)
        reader = NeuralReader(back, max_length=max_length, stride=stride, device=record["device"])
        extra["after_float16_trip"] = evaluate_reader(reader, sample)
        manifest = json.loads((out_files / MANIFEST).read_text())
        (out_files / MANIFEST).write_text(json.dumps({**manifest, **extra}, indent=1))
    click.echo(json.dumps({k: v for k, v in extra.items() if k != "training"}
                          | {"dev_f1": record["dev_f1"], "finished": record["finished"],
                             "steps": f"{record['steps']}/{record['planned_steps']}",
                             "minutes": round((time.monotonic() - began) / 60, 1)}, indent=1))  # fmt: skip


@main.command("unpack")
@click.argument("files", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
def unpack_command(files: Path, dest: Path) -> None:
    """Here: join and check the parts in FILES into a float32 torch reader folder DEST."""
    manifest = unpack(files, dest)
    record = manifest.get("training", {})
    trip = manifest.get("after_float16_trip")
    click.echo(f"{dest}: {record.get('steps')}/{record.get('planned_steps')} steps, dev F1 "
               f"{record.get('dev_f1')} (after the float16 trip: {trip})")  # fmt: skip


if __name__ == "__main__":
    main()
