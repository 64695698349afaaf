"""The training output folder: checked before the run, and at the end a publishable model folder with its card.

`output_dir` holds the Trainer's `checkpoint-*` folders (for resuming) and, once training ends, the final model:
config, weights (merged for LoRA, plus `adapter/` for a pretrained base), tokenizer with the index, generation
config, `training_results.json` and lcrec's model card. The final model replaces the previous one whole: an entry
of an earlier final model that this run does not write (an `adapter/`, a `metrics.json` of other weights) is
removed, since it describes weights that no longer exist. Checkpoints and the output marker stay.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from ..cards.model_card import TRAINING_RESULTS
from ..io_utils import OUTPUT_MARKER, check_output_dir, make_readable, mark_output
from ..lora import ADAPTER_SUBFOLDER, save_adapter
from .options import SCRATCH, SMOLLM2, DataOptions, ModelOptions

logger = logging.getLogger(__name__)

TRAIN_COMMAND = "train"  # the output marker's command: `lcrec train` and recipes/sft.py write the same folder
STAGING = ".final.tmp"
_CHECKPOINT = re.compile(r"checkpoint-\d+")


def prepare_output_dir(args, data: DataOptions, model_options: ModelOptions) -> Path:
    """Check `args.output_dir` before any work (see `io_utils.check_output_dir`) and mark it as train's output.

    Accepted: a new or empty folder, a previous output of this command (to resume or retrain), or any folder with
    `overwrite`. Refused: a folder inside or holding an input, a file, an unwritable place.
    """
    base_model = None if model_options.base_model in (SCRATCH, SMOLLM2) else model_options.base_model
    # The main process checks and marks the folder before the others check it: checked concurrently, another
    # process could see the marker's temporary file and refuse a folder "not written by lcrec train".
    with args.main_process_first(local=False, desc="output folder check"):
        output_dir = check_output_dir(
            args.output_dir,
            TRAIN_COMMAND,
            inputs=[data.dataset_dir, data.index_dir, data.user_text, base_model],
            overwrite=data.overwrite,
            signature=(TRAINING_RESULTS, "config.json"),
        )
        if args.process_index == 0:
            output_dir.mkdir(parents=True, exist_ok=True)
            mark_output(output_dir, TRAIN_COMMAND)
    return output_dir


def save_model_folder(trainer, output_dir: Path, use_lora: bool) -> Path:
    """Write the final model into `output_dir` (AutoModel.from_pretrained loads it); call it on every process.

    A LoRA run saves the merged weights, and for a pretrained base also `adapter/` (LoRA + index-token rows only,
    which AutoModel loads onto the base). Files go to a staging folder first, get the modes a plain write would
    give (readable by others), and each is renamed into place, so a reader never sees a half-written file.
    """
    staging = output_dir / STAGING
    main = trainer.is_world_process_zero()
    if main and staging.exists():
        shutil.rmtree(staging)  # left by an interrupted save of this command
    if use_lora:
        if main:
            peft_model = trainer.accelerator.unwrap_model(trainer.model)
            if peft_model.get_base_model().config.base_model_name_or_path:
                save_adapter(peft_model, staging / ADAPTER_SUBFOLDER)
            peft_model.merge_and_unload().save_pretrained(staging)  # an LCRecForCausalLM saves its tokenizer too
    else:
        trainer.save_model(str(staging))  # gathers sharded weights under DeepSpeed ZeRO-3 / FSDP
    if main:
        # The Trainer's pickled arguments stay in the checkpoints (for resuming), not in the model folder.
        (staging / "training_args.bin").unlink(missing_ok=True)
        make_readable(staging)
        written = {entry.name for entry in staging.iterdir()}
        for entry in sorted(output_dir.iterdir()):
            if entry.name not in written and not _kept(entry, trainer.args):
                _remove(entry)
                logger.info("removed %s of the previous model folder", entry)
        for entry in sorted(staging.iterdir()):
            target = output_dir / entry.name
            if entry.is_dir() and target.exists():
                _remove(target)
            os.replace(entry, target)
        staging.rmdir()
        logger.info("saved the model folder %s", output_dir)
    trainer.accelerator.wait_for_everyone()
    return output_dir


def _kept(entry: Path, args) -> bool:
    """Entries of output_dir that are not part of the model: checkpoints, the output marker, staging, logs."""
    logging_dir = Path(args.logging_dir).resolve() if getattr(args, "logging_dir", None) else None
    return (
        entry.name in {OUTPUT_MARKER, STAGING}
        or (entry.is_dir() and _CHECKPOINT.fullmatch(entry.name) is not None)
        or (logging_dir is not None and (entry.resolve() == logging_dir or entry.resolve() in logging_dir.parents))
    )


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()
