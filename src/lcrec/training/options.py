"""Plain option dataclasses of the SFT recipe, parsed by `TrlParser` next to TRL's `SFTConfig`.

Field names are unique across these classes and `SFTConfig` (they share one command line and one YAML).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..prompts import DEFAULT_MAX_HISTORY, INSTRUCTION_FORMAT, SEQUENCE_FORMAT
from ..tasks import MIX_TASKS, SEQUENCE_TASK, TASKS, mix_prompt_format

ALL_TASKS = list(TASKS)
# Every task a mix may hold: the paper's six (ALL_TASKS, the default) plus `sequence` (whole item sequences).
KNOWN_TASKS = list(MIX_TASKS)
AUTO_FORMAT = "auto"
# Distillation from a SASRec teacher (`teacher_dir`): the soft targets alone did best on the Scientific validation
# split (weight 0.9 and 1.0 tried, temperature 1 and 2).
DEFAULT_TEACHER_WEIGHT = 1.0
DEFAULT_TEACHER_TEMPERATURE = 1.0
# Reserved `base_model` names: a compact Llama trained from scratch, and the offline SmolLM2 asset.
SCRATCH = "scratch"
SMOLLM2 = "smollm2"


@dataclass
class DataOptions:
    """What the run reads (prepared dataset, item index, task mix) and whether it may replace a foreign output_dir."""

    dataset_dir: str | None = field(default=None, metadata={"help": "prepared dataset folder (`lcrec prepare --out`)"})
    index_dir: str | None = field(
        default=None, metadata={"help": "item index folder (`lcrec index --out`) or an index.json"}
    )
    tasks: list[str] = field(
        default_factory=lambda: list(ALL_TASKS), metadata={"help": f"tasks of the training mix, among {KNOWN_TASKS}"}
    )
    max_history: int = field(
        default=DEFAULT_MAX_HISTORY,
        metadata={"help": "most recent items kept in a history (and the `sequence` task's window)"},
    )
    seqrec_format: str = field(
        default=AUTO_FORMAT,
        metadata={
            "help": f"how recommend() asks the trained model: {INSTRUCTION_FORMAT} (seqrec templates), "
            f"{SEQUENCE_FORMAT} (continue the item sequence), or {AUTO_FORMAT} ({SEQUENCE_FORMAT} when the mix has "
            "the sequence task and not seqrec)"
        },
    )
    fusionseqrec_samples: int | None = field(
        default=None, metadata={"help": "fusionseqrec subsample size (None: the task builder's default, 20,000)"}
    )
    seqrec_samples: int | None = field(
        default=None, metadata={"help": "seqrec subsample size (None: every training prefix)"}
    )
    user_text: str | None = field(
        default=None,
        metadata={
            "help": "per-user texts for itemsearch/preferenceobtain: `lcrec augment` .jsonl or LC-Rec D.user.json "
            "(default: the dataset's users split)"
        },
    )
    skip_missing_tasks: bool = field(
        default=True, metadata={"help": "skip (with a message) tasks whose data is missing instead of raising"}
    )
    validation_samples: int | None = field(
        default=None, metadata={"help": "validation users whose seqrec rows give eval_loss (None: all)"}
    )
    ranking_eval_users: int | None = field(
        default=None,
        metadata={
            "help": "at every evaluation also rank this many (seeded) validation users and report eval_HR@K / "
            "eval_NDCG@K (metric_for_best_model NDCG@10 then keeps the best ranking checkpoint); None: off"
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "stop after this many evaluations without a better metric_for_best_model (None: off)"},
    )
    teacher_dir: str | None = field(
        default=None,
        metadata={
            "help": "a SASRec folder (`lcrec baseline sasrec --save_model DIR`, trained on the same dataset's train "
            "split) whose next-item distribution becomes soft targets for the index tokens (None: no distillation)"
        },
    )
    teacher_weight: float = field(
        default=DEFAULT_TEACHER_WEIGHT,
        metadata={"help": "share of the distillation loss (the rest is the usual cross-entropy), in [0, 1]"},
    )
    teacher_temperature: float = field(
        default=DEFAULT_TEACHER_TEMPERATURE, metadata={"help": "temperature of the teacher's softmax (> 0)"}
    )
    teacher_sampling: float = field(
        default=0.0,
        metadata={
            "help": "probability that a distilled item is replaced in the input by an item drawn from the teacher, "
            "trained on the teacher's targets along the drawn item's codes (sequence-level distillation), in [0, 1]"
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "let output_dir be a non-empty folder that a previous `lcrec train` did not write "
            "(its contents may be replaced)"
        },
    )

    def __post_init__(self) -> None:
        unknown = sorted(set(self.tasks) - set(KNOWN_TASKS))
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known tasks: {KNOWN_TASKS}")
        if not self.tasks:
            raise ValueError("tasks is empty: name at least one of " + ", ".join(KNOWN_TASKS))
        formats = (AUTO_FORMAT, INSTRUCTION_FORMAT, SEQUENCE_FORMAT)
        if self.seqrec_format not in formats:
            raise ValueError(f"seqrec_format must be one of {formats}, got {self.seqrec_format!r}")
        if self.seqrec_format == SEQUENCE_FORMAT and SEQUENCE_TASK not in self.tasks:
            raise ValueError(f"seqrec_format {SEQUENCE_FORMAT!r} needs the {SEQUENCE_TASK!r} task in the mix")
        if self.seqrec_format == INSTRUCTION_FORMAT and "seqrec" not in self.tasks:
            raise ValueError(f"seqrec_format {INSTRUCTION_FORMAT!r} needs the seqrec task in the mix")
        if self.max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {self.max_history}")
        if not 0.0 <= self.teacher_weight <= 1.0:
            raise ValueError(f"teacher_weight must be in [0, 1], got {self.teacher_weight}")
        if not self.teacher_temperature > 0:
            raise ValueError(f"teacher_temperature must be > 0, got {self.teacher_temperature}")
        if not 0.0 <= self.teacher_sampling <= 1.0:
            raise ValueError(f"teacher_sampling must be in [0, 1], got {self.teacher_sampling}")
        for name in (
            "fusionseqrec_samples",
            "seqrec_samples",
            "validation_samples",
            "ranking_eval_users",
            "early_stopping_patience",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (or None for all), got {value}")

    @property
    def prompt_format(self) -> str:
        """The format recommend() will ask in (`LCRecConfig.seqrec_format`): `seqrec_format` with auto resolved."""
        if self.seqrec_format != AUTO_FORMAT:
            return self.seqrec_format
        return mix_prompt_format(self.tasks)


@dataclass
class ModelOptions:
    """The base LM: a Hub id or path, `smollm2` (offline asset) or `scratch` (compact Llama, sizes below)."""

    base_model: str = field(default=SCRATCH, metadata={"help": f"hub id, local path, {SMOLLM2!r} or {SCRATCH!r}"})
    torch_dtype: str | None = field(
        default=None, metadata={"help": "weights dtype when loading a pretrained base (float32, bfloat16, ...)"}
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "attention kernel of a pretrained base (sdpa, flash_attention_2, ...)"}
    )
    scratch_vocab_size: int = field(
        default=2048, metadata={"help": "scratch: BPE vocabulary size before index tokens"}
    )
    scratch_hidden_size: int = field(default=128, metadata={"help": "scratch: hidden size"})
    scratch_num_layers: int = field(default=2, metadata={"help": "scratch: decoder layers"})
    scratch_num_heads: int = field(default=4, metadata={"help": "scratch: attention heads"})
    scratch_intermediate_size: int = field(default=512, metadata={"help": "scratch: MLP size"})
    scratch_max_positions: int = field(default=512, metadata={"help": "scratch: maximum sequence length"})
    scratch_tie_embeddings: bool = field(
        default=True, metadata={"help": "scratch: share the input embedding with the output head"}
    )

    def __post_init__(self) -> None:
        for name in (
            "scratch_vocab_size",
            "scratch_hidden_size",
            "scratch_num_layers",
            "scratch_num_heads",
            "scratch_intermediate_size",
            "scratch_max_positions",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def is_scratch(self) -> bool:
        return self.base_model == SCRATCH


@dataclass
class LoraOptions:
    """LoRA on the base LM's linear layers; the index-token rows of the embedding (and an untied head) train too."""

    use_lora: bool = field(default=False, metadata={"help": "train a LoRA adapter instead of full fine-tuning"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA path"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={
            "help": "linear modules that get LoRA (names such as q_proj v_proj, or all-linear: every linear layer "
            "but the head)"
        },
    )
    lora_train_index_tokens: bool = field(
        default=True, metadata={"help": "train the index-token rows of the embedding and output head"}
    )

    def __post_init__(self) -> None:
        if self.lora_r < 1:
            raise ValueError(f"lora_r must be >= 1, got {self.lora_r}")
        if self.lora_alpha <= 0:
            raise ValueError(f"lora_alpha must be > 0, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if "lm_head" in self.lora_target_modules:
            raise ValueError(
                "lora_target_modules must not hold lm_head: its index-token rows train via lora_train_index_tokens"
            )
