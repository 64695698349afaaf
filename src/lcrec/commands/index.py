"""`lcrec index --data DIR --out DIR`: build the semantic item index of a prepared dataset.

Embeds item texts, trains an RQ-VAE (RQVAEConfig: its shape; RQVAETrainingArguments: its schedule) with Sinkhorn
uniform mapping, and gives every item a distinct index. Writes index.json, the RQ-VAE, index_stats.json and a plot.
`--collaborative sasrec` adds interaction signal: a SASRec trained on the train split alone gives item vectors that
the codes are aligned with (`letter`, LETTER's alignment), quantised with (`concat`) or made from (`only`).
index_stats.json records how often consecutive training items share code prefixes, so indexes can be compared.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import command_line, command_parser, library_default

if TYPE_CHECKING:
    from ..indexing import RQVAEConfig, RQVAETrainingArguments

HELP = "build semantic item IDs (text embeddings -> RQ-VAE -> collision-free index)"
COLLABORATIVE_SOURCES = ("sasrec",)


@dataclass
class IndexArguments:
    """What `lcrec index` reads, how it embeds item texts, and where the index folder goes."""

    data: str = field(metadata={"help": "prepared dataset folder (`lcrec prepare --out`)"})
    out: str = field(metadata={"help": "index folder to write (replaced atomically; see --overwrite)"})
    encoder: str = field(
        default_factory=library_default("lcrec.indexing.embedding", "DEFAULT_ENCODER"),
        metadata={
            "help": "text encoder: `minilm` (offline default), a model folder or a Hub id (encoder or causal LM)"
        },
    )
    fields: list[str] = field(
        default_factory=library_default("lcrec.indexing.embedding", "DEFAULT_FIELDS"),
        metadata={"help": "item text fields to embed, e.g. title description brand categories"},
    )
    embedding_mode: str = field(
        default_factory=library_default("lcrec.indexing.builder", "build_index", "embedding_mode"),
        metadata={"help": "paper: embed each field on its own and average; concat: one text per item"},
    )
    sinkhorn_rounds: int = field(
        default_factory=library_default("lcrec.indexing.builder", "build_index", "sinkhorn_rounds"),
        metadata={"help": "rounds of the paper's Sinkhorn conflict resolution before the uniqueness guarantee"},
    )
    collaborative: str | None = field(
        default=None,
        metadata={
            "help": "collaborative signal in the codes: sasrec (item embeddings of a SASRec trained on the train "
            "split only; no validation or test data) or None: text only"
        },
    )
    collaborative_mode: str = field(
        default_factory=library_default("lcrec.indexing.collaborative", "DEFAULT_COLLABORATIVE_MODE"),
        metadata={
            "help": "letter: align the quantised text latents with the SASRec vectors (LETTER); concat: quantise "
            "text and SASRec vectors together; only: SASRec vectors alone"
        },
    )
    collaborative_weight: float = field(
        default_factory=library_default("lcrec.indexing.collaborative", "DEFAULT_ALIGNMENT_WEIGHT"),
        metadata={"help": "weight of the letter alignment term next to the RQ-VAE loss"},
    )
    collaborative_epochs: int = field(
        default_factory=library_default("lcrec.evaluation.baselines.evaluate", "ITEM_VECTOR_EPOCHS"),
        metadata={"help": "SASRec epochs on the train split (fixed: no validation data shapes the index)"},
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a non-empty --out folder that `lcrec index` did not write"}
    )

    def __post_init__(self) -> None:
        from ..indexing.collaborative import COLLABORATIVE_MODES
        from ..indexing.embedding import MODES

        if self.collaborative is not None and self.collaborative not in COLLABORATIVE_SOURCES:
            raise ValueError(f"collaborative must be one of {', '.join(COLLABORATIVE_SOURCES)} or None")
        if self.collaborative_mode not in COLLABORATIVE_MODES:
            raise ValueError(f"collaborative_mode must be one of {', '.join(COLLABORATIVE_MODES)}")
        if self.collaborative_weight <= 0 or self.collaborative_epochs < 1:
            raise ValueError("collaborative_weight must be > 0 and collaborative_epochs >= 1")

        if not self.fields:
            raise ValueError("fields: name at least one item text field")
        if self.embedding_mode not in MODES:
            raise ValueError(f"embedding_mode must be one of {', '.join(MODES)}, got {self.embedding_mode!r}")
        if self.sinkhorn_rounds < 0:
            raise ValueError(f"sinkhorn_rounds must be >= 0, got {self.sinkhorn_rounds}")


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ..indexing import RQVAEConfig, RQVAETrainingArguments

    dataclass_types = (IndexArguments, RQVAEConfig, RQVAETrainingArguments)
    return command_parser(subparsers, "index", HELP, __doc__, dataclass_types, prog=prog)


def run(arguments: IndexArguments, config: RQVAEConfig, training: RQVAETrainingArguments) -> int:
    from ..data import load_prepared
    from ..evaluation.baselines import sasrec_index_arguments, training_sequences
    from ..indexing import build_index
    from ..indexing.builder import COMMAND, OUTPUT_SIGNATURE
    from ..indexing.embedding import DEFAULT_ENCODER
    from ..io_utils import check_output_dir
    from .checks import require_device, require_pretrained

    out, overwrite = arguments.out, arguments.overwrite
    check_output_dir(out, COMMAND, inputs=[arguments.data], overwrite=overwrite, signature=OUTPUT_SIGNATURE)
    require_device(training.device)
    if arguments.encoder != DEFAULT_ENCODER:
        require_pretrained(arguments.encoder, "--encoder", files=("config.json",), what="text encoder model")
    dataset = load_prepared(arguments.data)
    items = dataset["items"].to_list()
    extra = {"sequences": training_sequences(dataset)}
    if arguments.collaborative == "sasrec":
        extra.update(
            sasrec_index_arguments(
                dataset,
                items,
                arguments.collaborative_mode,
                training.seed,
                weight=arguments.collaborative_weight,
                epochs=arguments.collaborative_epochs,
            )
        )
    result = build_index(
        items,
        arguments.out,
        encoder=arguments.encoder,
        config=config,
        training_args=training,
        fields=arguments.fields,
        embedding_mode=arguments.embedding_mode,
        sinkhorn_rounds=arguments.sinkhorn_rounds,
        overwrite=arguments.overwrite,
        command=command_line(),
        **extra,
    )
    stats = result.stats
    print(f"index: {stats['num_items']} items, {stats['levels']} levels x {stats['codebook_sizes']} codes -> {out}")
    print(
        f"collisions: {stats['colliding_items_before_resolution']} items before resolution, "
        f"{stats['colliding_items_after_sinkhorn']} after {stats['sinkhorn_rounds']} Sinkhorn rounds, "
        f"{stats['collisions']} final"
    )
    print("level  utilisation  entropy(bits)")
    for level, (used, entropy) in enumerate(zip(stats["utilization"], stats["entropy"]), start=1):
        print(f"{level:>5}  {used:>11.1%}  {entropy:>13.2f}")
    for depth, sharing in stats.get("train_pair_prefix_sharing", {}).items():
        print(
            f"consecutive training items sharing their first {depth.split('_')[1]} code(s): {sharing['shared']:.1%} "
            f"(random codes: {sharing['random']:.1%})"
        )
    print(
        f"seconds: {stats['seconds']:.1f} (embedding {stats['embedding_seconds']:.1f}, "
        f"RQ-VAE + assignment {stats['training_seconds']:.1f})"
    )
    return 0
