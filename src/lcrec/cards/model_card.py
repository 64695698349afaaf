"""lcrec's model card: what a model folder records about its data, item index, training and evaluation.

Every model folder lcrec writes is publishable as it is: `write_model_card` renders README.md from the folder's
own records (config.json, generation_config.json, index.json, training_results.json, index_stats.json,
dataset_stats.json, metrics.json), `update_model_card_metrics` adds an evaluation, and `lcrec push model` /
`model.push_to_hub` render the same card for the repo they publish. The publisher's fields (license, language,
dataset repo, extra tags) live in the card's YAML header, so every later render keeps them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers.utils import GENERATION_CONFIG_NAME

from ..data.prepared import STATS_FILE as DATASET_STATS_SOURCE
from ..evaluation.metrics import METRIC_NAMES
from ..indexing.builder import STATS_NAME as INDEX_STATS_NAME
from ..indexing.item_index import INDEX_FILENAME, ItemIndex
from ..io_utils import read_json, save_with, write_json, write_text
from ..lora import ADAPTER_SUBFOLDER
from .card_templates import render_card

logger = logging.getLogger(__name__)

CARD_NAME = "README.md"
TRAINING_RESULTS = "training_results.json"  # written by training (lcrec.training.run_sft)
METRICS_NAME = "metrics.json"  # written by evaluation (lcrec evaluate, the quickstart)
DATASET_STATS_NAME = "dataset_stats.json"
# The records a model folder keeps for its card; each is published with the model.
CARD_RECORDS = (TRAINING_RESULTS, DATASET_STATS_NAME, INDEX_STATS_NAME, METRICS_NAME)
TAGS = ("lcrec", "recommendation", "generative-recommendation", "semantic-ids")
# The Hub's license id for "not stated"; `--license` / `license=` sets the real one.
UNKNOWN_LICENSE = "unknown"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def is_hub_id(name: str | None) -> bool:
    """True for `org/name` strings that are not a folder on this machine (card metadata must name Hub repos)."""
    return bool(name) and _HUB_ID.match(name) is not None and not Path(name).exists()


@dataclass
class LCRecModelCardData:
    """What lcrec's model card says.

    The first fields are the publisher's (given, and kept in the card's YAML header between renders);
    `read_model_dir` fills the others from the model folder's records, as sentence-transformers fills its card
    data from the model.
    """

    model_id: str | None = None
    license: str | None = None
    language: list[str] | None = None
    dataset_id: str | None = None
    tags: list[str] = field(default_factory=list)
    reproduce: list[str] = field(default_factory=list)

    folder_name: str = "model"
    base_model: str | None = None
    num_parameters: int | None = None
    index: ItemIndex | None = None
    index_stats: dict | None = None
    dataset_stats: dict | None = None
    training: dict | None = None
    metrics: dict | None = None
    generation: dict = field(default_factory=dict)
    merged_weights: bool = False
    adapter: str | None = None
    remote_code: bool = False
    custom_pipelines: list[str] = field(default_factory=list)

    def read_model_dir(self, model_dir: str | os.PathLike) -> LCRecModelCardData:
        """Fill the folder's fields from its records (a record that is absent leaves its field empty); returns self."""
        model_dir = Path(model_dir)
        config = read_json(model_dir / "config.json", expect=dict)
        self.folder_name = model_dir.resolve().name
        records = {
            name: read_json(model_dir / name, expect=dict) for name in CARD_RECORDS if (model_dir / name).is_file()
        }
        self.training = records.get(TRAINING_RESULTS)
        self.dataset_stats = records.get(DATASET_STATS_NAME)
        self.index_stats = records.get(INDEX_STATS_NAME)
        self.metrics = records.get(METRICS_NAME)
        base = config.get("base_model_name_or_path")
        self.base_model = base if is_hub_id(base) else None
        self.index = (
            ItemIndex.from_path(model_dir / INDEX_FILENAME) if (model_dir / INDEX_FILENAME).is_file() else None
        )
        generation_file = model_dir / GENERATION_CONFIG_NAME
        self.generation = read_json(generation_file, expect=dict) if generation_file.is_file() else {}
        weights = sorted(model_dir.glob("model*.safetensors"))
        self.merged_weights = bool(weights)
        self.num_parameters = _count_parameters(weights) if weights else None
        if (model_dir / ADAPTER_SUBFOLDER / "adapter_config.json").is_file():
            self.adapter = f"{ADAPTER_SUBFOLDER}/"
        elif (model_dir / "adapter_config.json").is_file():
            self.adapter = "."
        else:
            self.adapter = None
        self.remote_code = bool(config.get("auto_map")) and any(model_dir.glob("*.py"))
        self.custom_pipelines = sorted(config.get("custom_pipelines") or {})
        return self

    @property
    def recorded_commands(self) -> list[str]:
        """The commands that produced this model, as the data, index and training records name them."""
        records = (self.dataset_stats, self.index_stats, self.training)
        commands = [record["command"] for record in records if record and isinstance(record.get("command"), str)]
        return list(dict.fromkeys(commands))  # one workflow (e.g. the quickstart) may have produced them all

    @property
    def metric_names(self) -> list[str]:
        return [name for name in METRIC_NAMES if self.metrics and name in self.metrics]

    @property
    def evaluation_split(self) -> str:
        split = str((self.metrics or {}).get("split", "test"))
        return "validation" if split == "valid" else split

    def hub_metadata(self):
        """The card's YAML header (huggingface_hub's ModelCardData, `model-index` from the metrics)."""
        from huggingface_hub import ModelCardData

        extra = {}
        if self.base_model:
            extra["base_model_relation"] = "adapter" if self.adapter == "." and not self.merged_weights else "finetune"
        return ModelCardData(
            model_name=self.model_id.split("/")[-1] if self.model_id else self.folder_name,
            license=self.license or UNKNOWN_LICENSE,
            language=self.language,
            library_name="transformers",
            pipeline_tag="text-generation",
            tags=list(dict.fromkeys([*TAGS, *self.tags])),
            base_model=self.base_model,
            datasets=[self.dataset_id] if self.dataset_id else None,
            eval_results=self._eval_results() or None,
            **extra,
        )

    def _eval_results(self) -> list:
        from huggingface_hub import EvalResult

        if not self.metrics:
            return []
        return [
            EvalResult(
                task_type="text-generation",
                task_name="Sequential recommendation (full ranking, leave-one-out)",
                dataset_type=self.dataset_id or _dataset_name(self.dataset_stats) or "unknown",
                dataset_name=self.dataset_id or _dataset_name(self.dataset_stats) or "the training dataset",
                dataset_split=self.evaluation_split,
                dataset_config="interactions",
                metric_type=name.lower().replace("@", "_at_"),
                metric_name=name,
                metric_value=float(self.metrics[name]),
                metric_config=f"num_beams={self.metrics.get('num_beams')}",
            )
            for name in self.metric_names
        ]

    def render(self) -> str:
        """README.md: the YAML header, then the model card template of the package (or `LCREC_MODEL_CARDS`)."""
        return render_card(
            "model_card.md.j2",
            self.hub_metadata(),
            card=self,
            model_ref=self.model_id or f"path/to/{self.folder_name}",
            dataset_name=_dataset_name(self.dataset_stats),
            reproduce=self.reproduce or self.recorded_commands,
        )


def _dataset_name(stats: Mapping | None) -> str | None:
    """The source a dataset was prepared from, without the folders of the machine that prepared it."""
    source = (stats or {}).get("source")
    return Path(str(source)).name if source else None


def _count_parameters(weight_files: list[Path]) -> int:
    """Parameters stored in safetensors files, read from their headers only."""
    from safetensors import safe_open

    total = 0
    for path in weight_files:
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has keys(), no iteration
                count = 1
                for size in handle.get_slice(key).get_shape():
                    count *= size
                total += count
    return total


def require_model_dir(model_dir: str | os.PathLike) -> Path:
    """`model_dir` as a Path, after checking it is an lcrec model folder (config.json with model_type lcrec)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model folder")
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json (expected a save_pretrained model folder)")
    model_type = read_json(model_dir / "config.json", expect=dict).get("model_type")
    if model_type != "lcrec":
        raise ValueError(f"{model_dir}: config.json has model_type {model_type!r}, expected 'lcrec'")
    return model_dir


def publisher_fields(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The publisher's fields kept in the folder's lcrec card header (empty when there is no lcrec card)."""
    from huggingface_hub import ModelCard

    path = Path(model_dir) / CARD_NAME
    if not path.is_file():
        return {}
    data = ModelCard.load(path).data
    if "lcrec" not in (data.tags or []):
        return {}  # another tool's card (e.g. TRL's placeholder): nothing of the publisher's to keep
    language = data.language
    return {
        "license": None if data.license == UNKNOWN_LICENSE else data.license,
        "language": [language] if isinstance(language, str) else language,
        "dataset_id": (data.datasets or [None])[0],
        "tags": [tag for tag in data.tags if tag not in TAGS],
    }


def copy_record(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy a record file atomically (readers never see half a file)."""
    save_with(target, lambda tmp: shutil.copyfile(source, tmp))


def index_stats_file(index_dir: str | os.PathLike) -> Path | None:
    """The index_stats.json of an index folder, or beside an index.json; None when the index has none."""
    index_dir = Path(index_dir)
    folder = index_dir if index_dir.is_dir() else index_dir.parent
    path = folder / INDEX_STATS_NAME
    return path if path.is_file() else None


def write_model_card(
    model_dir: str | os.PathLike,
    card_data: LCRecModelCardData | None = None,
    *,
    dataset_dir: str | os.PathLike | None = None,
    index_dir: str | os.PathLike | None = None,
) -> Path:
    """Render lcrec's README.md into the model folder and return its path.

    `dataset_dir` / `index_dir` (the prepared dataset and item index it was trained on) add their statistics:
    they are copied into the folder as dataset_stats.json and index_stats.json, so later renders (after
    `lcrec evaluate`, at push time) have them without those folders. `card_data` gives the publisher's fields;
    by default they are kept from the folder's current lcrec card.
    """
    model_dir = require_model_dir(model_dir)
    if dataset_dir is not None:
        stats = Path(dataset_dir) / DATASET_STATS_SOURCE
        if not stats.is_file():
            raise FileNotFoundError(f"{dataset_dir}: not a prepared dataset folder (no {DATASET_STATS_SOURCE})")
        copy_record(stats, model_dir / DATASET_STATS_NAME)
    if index_dir is not None:
        stats = index_stats_file(index_dir)
        if stats is not None:
            copy_record(stats, model_dir / INDEX_STATS_NAME)
    if card_data is None:
        card_data = LCRecModelCardData(**publisher_fields(model_dir))
    card_data.read_model_dir(model_dir)
    path = model_dir / CARD_NAME
    write_text(path, card_data.render())
    logger.info("wrote the model card %s", path)
    return path


def update_model_card_metrics(model_dir: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Record an evaluation (a metrics.json record) in the model folder and re-render its card; returns README.md.

    The record becomes the folder's metrics.json (what `lcrec evaluate` writes there by default), so the card,
    the folder and a later push all show the same numbers.
    """
    model_dir = require_model_dir(model_dir)
    missing = [name for name in METRIC_NAMES if name not in metrics]
    if missing:
        raise ValueError(f"not a metrics.json record: it lacks {', '.join(missing)}")
    path = model_dir / METRICS_NAME
    record = dict(metrics)
    if not path.is_file() or read_json(path) != record:
        write_json(path, record)
    return write_model_card(model_dir)


__all__ = [
    "CARD_RECORDS",
    "LCRecModelCardData",
    "update_model_card_metrics",
    "write_model_card",
]
