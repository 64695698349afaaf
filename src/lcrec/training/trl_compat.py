"""The one place lcrec's training relies on TRL / PEFT details that are not public API, each for a measured reason.

Everything here is version-checked, applied only to the trainer's own model or for the duration of one loss
computation, and names the upstream change that would let it go. Nothing else in lcrec touches these details
(`grep -rn "_use_triton" src` finds only this module).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch

logger = logging.getLogger(__name__)

# TRL versions whose fused LM head reads `trl.trainer.utils._use_triton(device)` to decide between scoring only the
# labelled positions and scoring every position (checked on 1.16). Outside this range the switch is left alone.
COMPACT_HEAD_TRL_VERSIONS = ">=1.16,<2"
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)


def _trl_switch_module():
    """TRL's module whose `_use_triton` the fused LM head reads, or None when this TRL has no such switch."""
    import trl
    import trl.trainer.utils as trl_utils
    from packaging.specifiers import SpecifierSet

    known = SpecifierSet(COMPACT_HEAD_TRL_VERSIONS).contains(trl.__version__, prereleases=True)
    if not known or not callable(getattr(trl_utils, "_use_triton", None)):
        _warn_once(
            "compact",
            f"TRL {trl.__version__}: no known switch for compact fused-head scoring (known: TRL "
            f"{COMPACT_HEAD_TRL_VERSIONS}); on CPU every position is scored (same loss, slower training)",
        )
        return None
    return trl_utils


@contextmanager
def compact_fused_head_on_cpu() -> Iterator[None]:
    """While the block runs, TRL's fused LM head scores only the labelled (completion) positions on CPU too.

    Why: TRL projects every position through the LM head unless Triton runs its kernel (to keep tile shapes fixed
    for compiled backends such as Neuron/XLA). Eager CPU recompiles nothing, and an LC-Rec row is mostly prompt
    (~5 completion tokens of ~90): scoring only those made a CPU training step of the ml-100k-cpu preset 2.6x faster
    (bench/sft_throughput.py, README "Training"). Loss and gradients are the same (unlabelled positions are masked
    out either way). Only the fused head's choice changes; the kernels keep their own device checks.
    Upstream change that removes this: a public TRL option to score only labelled positions on any device (e.g.
    an `add_fused_lm_head(..., compact=True)` argument or an SFTConfig field).
    The switch is module-wide while the block runs and restored afterwards, also on error.
    """
    module = _trl_switch_module()
    if module is None:
        yield
        return
    original = module._use_triton

    def compact_on_cpu(device: torch.device) -> bool:
        return device.type == "cpu" or original(device)

    module._use_triton = compact_on_cpu
    try:
        yield
    finally:
        module._use_triton = original


def expose_head_bias(model) -> None:
    """Give PEFT's trainable-token wrapper of the output head the `bias` attribute TRL's fused LM head reads.

    Why: with `trainable_token_indices` (how lcrec's LoRA trains the index-token rows), PEFT wraps the output head
    in a `TrainableTokensWrapper` that delegates `weight` but not `bias`, and TRL's fused head reads
    `lm_head.bias`: training fails with AttributeError. The wrapper gets its wrapped layer's bias (None for the
    usual bias-free head). Applied to the trainer's own model only.
    Upstream change that removes this: PEFT's TrainableTokensWrapper delegating `bias` as it does `weight`, or TRL
    reading `getattr(lm_head, "bias", None)`.
    """
    head = model.get_output_embeddings()
    if head is None or hasattr(head, "bias"):
        return
    from peft.utils.other import TrainableTokensWrapper

    if isinstance(head, TrainableTokensWrapper):
        head.bias = head.token_adapter.get_base_layer().bias
