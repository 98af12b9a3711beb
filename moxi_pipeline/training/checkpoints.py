"""Trainer checkpoints as plain files, so a killed training resumes on another machine from S3.

A Trainer checkpoint (`checkpoint-<step>/`) holds the adapter (safetensors), trainer_state.json and torch
pickles: optimizer.pt, scheduler.pt, rng_state.pth (rng_state_<rank>.pth, one a process, under DDP), scaler.pt
with fp16, and training_args.bin. The artifact store publishes no pickle, because loading one runs code. So
`write_plain_checkpoint` turns each `<name>.pt`/`.pth` into `<name>.json` (the structure: dicts, lists, tuples
and numbers, with a placeholder where a tensor was) and `<name>.safetensors` (the tensors, named by their path,
e.g. `state.0.exp_avg`). `rebuild_checkpoint` does the reverse: it torch.saves, locally, objects rebuilt from
JSON and safetensors, so `trainer.train(resume_from_checkpoint=...)` reads the folder unchanged.
training_args.bin is dropped: a resume never reads it, and training_config.json records the same settings.

`PublishedCheckpoints` is a run's folder of them in the store, `checkpoints/<run>/checkpoint-<step>/`, each
with the run's `moxi_run.json` fingerprint. The store writes a folder's manifest last, so a folder without one
is an upload that never finished. Listing the run's folder finds the newest complete one; a LATEST pointer
would only repeat what the manifests already say, and could disagree with them after a crash.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from moxi_pipeline.storage.artifacts import ArtifactStore

log = logging.getLogger(__name__)
RUN_FINGERPRINT = "moxi_run.json"  # config + dataset hash of the run the checkpoints belong to
TORCH_SAVED = (".pt", ".pth")  # optimizer, scheduler, scaler, rng_state[_<rank>]
DROPPED = ("training_args.bin",)
CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
# the only torch files a rebuild writes: a name read from a bucket is untrusted, so nothing else, and no path
KNOWN_TORCH_SAVE = re.compile(r"(optimizer|scheduler|scaler|rng_state(_\d{1,4})?)\.(pt|pth)")
# JSON placeholders for what JSON lacks; a plain JSON object is a dict whose keys are all str and none starts "__"
TENSOR, ARRAY, TUPLE, DICT = "__tensor__", "__ndarray__", "__tuple__", "__dict__"
PLAIN_TYPES = (type(None), bool, int, float, str)


def split_tensors(value, path: str, tensors: dict) -> object:
    """`value` as JSON data; each tensor or numpy array goes into `tensors` under its path, a placeholder stays.

    Tensors are copied to contiguous CPU memory of their own: safetensors refuses views and shared storage.
    """
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return {TENSOR: _add_tensor(tensors, path, value.detach().cpu().contiguous().clone())}
    if isinstance(value, np.ndarray):
        return {ARRAY: _add_tensor(tensors, path, torch.from_numpy(np.ascontiguousarray(value).copy()))}
    where = path or "the state"
    if type(value) in (list, tuple):  # exact types: a subclass would come back as its base class
        items = [split_tensors(item, _join(path, index), tensors) for index, item in enumerate(value)]
        return {TUPLE: items} if type(value) is tuple else items
    if type(value) is dict:
        items = [(key, split_tensors(item, _join(path, key), tensors)) for key, item in value.items()]
        if all(type(key) is str and not key.startswith("__") for key in value):
            return dict(items)
        if all(type(key) in (str, int) for key in value):  # the optimizer's state is keyed by parameter index
            return {DICT: [list(pair) for pair in items]}
        raise TypeError(f"{where} has keys of type {sorted({type(key).__name__ for key in value})}, which JSON cannot hold")
    if type(value) in PLAIN_TYPES:
        return value
    raise TypeError(f"{where} is a {type(value).__name__}, which neither JSON nor safetensors can hold")


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _add_tensor(tensors: dict, name: str, tensor) -> str:
    if name in tensors:  # only when a key itself holds a dot, e.g. {"a.b": x, "a": {"b": y}}
        raise ValueError(f"two tensors would both be stored as {name!r}")
    tensors[name] = tensor
    return name


def join_tensors(value, tensors: dict) -> object:
    """The inverse of `split_tensors`: placeholders replaced by the tensors and arrays they name."""
    if isinstance(value, list):
        return [join_tensors(item, tensors) for item in value]
    if not isinstance(value, dict):
        return value
    if TENSOR in value:
        return tensors[value[TENSOR]]
    if ARRAY in value:
        return tensors[value[ARRAY]].numpy()
    if TUPLE in value:
        return tuple(join_tensors(item, tensors) for item in value[TUPLE])
    pairs = value[DICT] if DICT in value else value.items()
    return {key: join_tensors(item, tensors) for key, item in pairs}


def load_torch_saved(path: Path):
    """A state our own Trainer just saved; weights_only still refuses any object beyond tensors and numpy arrays."""
    import torch
    from transformers.trainer_pt_utils import safe_globals

    with safe_globals():
        return torch.load(path, map_location="cpu", weights_only=True)


def write_plain_state(source: Path, out_dir: Path) -> None:
    """`<name>.pt` -> `<name>.json` (structure, the file name to rebuild) + `<name>.safetensors` (its tensors)."""
    from safetensors.torch import save_file

    tensors: dict = {}
    try:
        state = split_tensors(load_torch_saved(source), "", tensors)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: cannot store it as plain files: {error}") from None
    (out_dir / f"{source.stem}.json").write_text(json.dumps({"torch_save": source.name, "state": state}))
    if tensors:
        save_file(tensors, str(out_dir / f"{source.stem}.safetensors"))


def write_plain_checkpoint(checkpoint: Path, out_dir: Path) -> Path:
    """A copy of `checkpoint` in `out_dir` with no pickle in it: each .pt/.pth file as JSON + safetensors."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(checkpoint.iterdir()):
        if path.name in DROPPED:
            continue
        if path.suffix in TORCH_SAVED:
            write_plain_state(path, out_dir)
        elif path.is_dir():
            shutil.copytree(path, out_dir / path.name)
        else:
            shutil.copy2(path, out_dir / path.name)
    return out_dir


def plain_states(plain_dir: Path) -> dict[str, dict]:
    """{stem: record} for each JSON file of `plain_dir` that `write_plain_state` wrote."""
    records = {}
    for path in plain_dir.glob("*.json"):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and "torch_save" in record:
            records[path.stem] = record
    return records


def _torch_save_target(staging: Path, plain_json: Path, record: dict) -> Path:
    """Where a rebuilt torch file goes: `staging/<name>`, where `<name>` (from the bucket's JSON, so untrusted) must be
    a file name the Trainer writes (KNOWN_TORCH_SAVE) with the JSON file's own stem; a ValueError otherwise."""
    name = record.get("torch_save")
    if not (isinstance(name, str) and KNOWN_TORCH_SAVE.fullmatch(name) and Path(name).stem == plain_json.stem):
        raise ValueError(f"{plain_json}: torch_save={name!r} is not a checkpoint file name this rebuild writes "
                         f"({KNOWN_TORCH_SAVE.pattern}, named like the JSON file)")
    target = (staging / name).resolve()
    if target.parent != staging.resolve():
        raise ValueError(f"{plain_json}: torch_save={name!r} points outside {staging}")
    return target


def rebuild_checkpoint(plain_dir: Path, checkpoint: Path) -> Path:
    """The Trainer checkpoint folder back from its plain form, its pickles written here by torch.save.

    Built beside `checkpoint` and renamed into place, so a crash midway never leaves a folder that
    get_last_checkpoint would pick.
    """
    import torch
    from safetensors.torch import load_file

    from moxi_pipeline.models.base import publish_dir, staging_dir

    records = plain_states(plain_dir)
    staging = staging_dir(checkpoint)
    for path in sorted(plain_dir.iterdir()):
        if path.stem in records and path.suffix == ".json":
            tensors_file = path.with_suffix(".safetensors")
            tensors = load_file(str(tensors_file)) if tensors_file.is_file() else {}
            torch.save(join_tensors(records[path.stem]["state"], tensors), _torch_save_target(staging, path, records[path.stem]))
        elif path.stem in records and path.suffix == ".safetensors":
            continue
        elif path.is_dir():
            shutil.copytree(path, staging / path.name)
        else:
            shutil.copy2(path, staging / path.name)
    publish_dir(staging, checkpoint)
    return checkpoint


def step_of(name: str) -> int:
    return int(CHECKPOINT_NAME.fullmatch(name).group(1))


@dataclass(frozen=True)
class PublishedCheckpoints:
    """One training run's checkpoints in the store, under `key` (checkpoints/<run>)."""

    store: ArtifactStore
    key: str

    def names(self) -> list[str]:
        """`checkpoint-<step>` folders, newest first, unfinished uploads included."""
        names = [name for name in self.store.list_folders(self.key) if CHECKPOINT_NAME.fullmatch(name)]
        return sorted(names, key=step_of, reverse=True)

    def publish(self, checkpoint: Path, fingerprint: Path) -> str:
        """Publish `checkpoint`'s plain form with the run's fingerprint; the plain copy is built beside it."""
        with tempfile.TemporaryDirectory(dir=checkpoint.parent, prefix=".publishing-") as tmp:
            plain = write_plain_checkpoint(checkpoint, Path(tmp) / checkpoint.name)
            shutil.copy2(fingerprint, plain / RUN_FINGERPRINT)
            return self.store.publish(plain, f"{self.key}/{checkpoint.name}")

    def prune(self, keep: int) -> None:
        """Delete all but the newest `keep`: the same limit as save_total_limit on the local disk."""
        for name in self.names()[keep:]:
            self.store.delete(f"{self.key}/{name}")

    def delete(self) -> None:
        self.store.delete(self.key)

    def restore(self, fingerprint: dict, checkpoints: Path) -> Path | None:
        """The newest complete checkpoint of this same run, rebuilt into `checkpoints`; None if there is none.

        An unfinished upload (no manifest) or a damaged one is skipped, with a warning, for the next older one.
        Checkpoints of another config or dataset are deleted, as local ones are cleared: the run starts over,
        and they must not be taken for the new run's checkpoints later.
        """
        for name in self.names():
            try:
                plain = self.store.fetch(self.store.uri(f"{self.key}/{name}"))
            except ValueError as error:
                log.warning("published checkpoint %s/%s not used: %s", self.key, name, error)
                continue
            record = plain / RUN_FINGERPRINT
            if not record.is_file() or json.loads(record.read_text()) != fingerprint:
                log.warning("published checkpoints under %s belong to another config or dataset: deleted, "
                            "training starts over", self.key)
                self.delete()
                return None
            return rebuild_checkpoint(plain, checkpoints / name)
        return None

    def callback(self, fingerprint: Path, keep: int):
        """A TrainerCallback that publishes each checkpoint once saved, then prunes the older ones."""
        from transformers import TrainerCallback

        published = self

        class PublishCheckpoints(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                wait_for_every_process()  # under DDP each process writes its own rng_state_<rank>.pth
                if state.is_world_process_zero:
                    published.publish(Path(args.output_dir) / f"checkpoint-{state.global_step}", fingerprint)
                    published.prune(keep)

        return PublishCheckpoints()


def wait_for_every_process() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
