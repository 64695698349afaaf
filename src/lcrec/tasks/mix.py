"""The task mix: the six LC-Rec tasks (and `sequence`) as one shuffled `datasets.Dataset` of prompt/completion rows.

Building happens in two stages so each epoch can draw fresh templates cheaply:
1. `TaskMix.build(...)` collects every task's samples (which users, prefixes and items; their history
   strings, titles, texts). Which samples are in the mix depends only on `seed`.
2. `TaskMix.render(epoch)` draws one template per sample (uniformly among the templates the sample can
   fill) from a generator seeded by (seed, epoch, task), renders prompt and completion, and shuffles.
   The same (seed, epoch) always gives the same rows; another epoch gives another template draw.
   `render_epochs(n)` concatenates n such epochs, for training `n` epochs as one pass.

`build_task_mix(...)` is `TaskMix.build(...).render(epoch)`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, Features, Value, concatenate_datasets

from ..indexing import ItemIndex, check_index_covers_dataset
from ..prompts import (
    DEFAULT_MAX_HISTORY,
    INSTRUCTION_FORMAT,
    SEQREC_FORMATS,
    SEQUENCE_FORMAT,
    join_history,
    recent_items,
    sequence_prompt,
)
from .sequence import MIX_TASKS, SEQUENCE_TASK, SEQUENCE_TEMPLATE_ID, SequenceSamples
from .templates import TASKS, Template, load_templates
from .user_texts import UserTexts, load_user_texts

logger = logging.getLogger(__name__)

# Per-task sample caps applied by default: the paper subsamples fusionseqrec (20k-100k samples).
DEFAULT_SAMPLES_PER_TASK: dict[str, int] = {"fusionseqrec": 20_000}
MIX_FEATURES = Features(
    {"prompt": Value("string"), "completion": Value("string"), "task": Value("string"), "template_id": Value("int64")}
)
_TASK_KEYS = {task: key for key, task in enumerate(MIX_TASKS)}
_USER_TEXT_TASKS = {"itemsearch": "intention", "preferenceobtain": "preference"}
# Tasks every template of which shows or answers an item's title or description.
_ITEM_TEXT_TASKS = frozenset({"item2index", "index2item", "fusionseqrec"})


class MissingTaskDataError(ValueError):
    """A requested task needs data the dataset lacks (raised only when strict)."""


def _title_text(title: str) -> str:
    """A title as shown inside prompts and answers: no trailing sentence punctuation (it is often quoted)."""
    return title.strip().rstrip(".!?,;: ").strip()


def _sentence(text: str) -> str:
    """A text ending in sentence punctuation, so templates can continue after it."""
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


@dataclass
class _TaskSamples:
    """One task's samples: field columns (a value is a string or a tuple of alternatives) and which templates fit."""

    task: str
    templates: tuple[Template, ...]
    fields: dict[str, list]
    eligible: np.ndarray  # (num_samples, num_templates) bool

    def __len__(self) -> int:
        return len(self.eligible)


class _Catalogue:
    """Per-item strings (index tokens, display title, description) indexed by item_id, plus training sequences."""

    def __init__(self, dataset: DatasetDict, item_index: ItemIndex, max_history: int):
        if max_history < 1:
            raise ValueError(f"max_history must be at least 1, got {max_history}")
        for split in ("items", "train"):
            if split not in dataset:
                raise ValueError(
                    f"the dataset has no {split!r} split (splits: {list(dataset)}); prepare it with `lcrec prepare`"
                )
        check_index_covers_dataset(item_index, dataset)
        items = dataset["items"].select_columns(["item_id", "title", "description"]).to_dict()
        num_items = max(items["item_id"], default=-1) + 1
        self.max_history = max_history
        self.item_ids = items["item_id"]
        self.tokens = [""] * num_items
        self.titles = [""] * num_items
        self.descriptions = [""] * num_items
        for item, title, description in zip(items["item_id"], items["title"], items["description"]):
            self.tokens[item] = item_index.tokens(item)
            self.titles[item] = _title_text(title or "")
            self.descriptions[item] = _sentence(description or "")
        train = dataset["train"].select_columns(["user_id", "history", "target"]).to_dict()
        self.user_ids: list[int] = train["user_id"]
        self.sequences: list[list[int]] = [
            history + [target] for history, target in zip(train["history"], train["target"])
        ]
        unknown = {
            item
            for sequence in self.sequences
            for item in sequence
            if not 0 <= item < num_items or not self.tokens[item]
        }
        if unknown:
            raise ValueError(
                f"the train split uses {len(unknown)} items missing from the items split, e.g. {sorted(unknown)[:10]}"
            )

    @property
    def has_item_text(self) -> bool:
        """Whether any item has a title or a description."""
        return any(self.titles) or any(self.descriptions)

    def history(self, items: Sequence[int]) -> str:
        """Index tokens of the most recent `max_history` items, joined (as recommend() renders them)."""
        return join_history([self.tokens[item] for item in recent_items(items, self.max_history)])

    def history_titles(self, items: Sequence[int]) -> str:
        """Quoted titles of the most recent `max_history` items (items without a title are left out)."""
        titles = [self.titles[item] for item in recent_items(items, self.max_history)]
        return join_history([f'"{title}"' for title in titles if title])


def _eligibility(templates: Sequence[Template], fields: Mapping[str, list]) -> np.ndarray:
    """(num_samples, num_templates): True where the sample has a non-empty value for every field the template uses."""
    filled = {
        name: np.fromiter((bool(value) for value in values), dtype=bool, count=len(values))
        for name, values in fields.items()
    }
    size = len(next(iter(fields.values())))
    columns = []
    for template in templates:
        mask = np.ones(size, dtype=bool)
        for name in template.fields:
            mask &= filled[name]
        columns.append(mask)
    return np.stack(columns, axis=1)


def _prefixes(catalogue: _Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Every (user row, target position >= 1) of the training sequences: the samples of seqrec."""
    lengths = np.fromiter(
        (len(sequence) for sequence in catalogue.sequences), dtype=np.int64, count=len(catalogue.sequences)
    )
    counts = np.maximum(lengths - 1, 0)
    rows = np.repeat(np.arange(len(lengths)), counts)
    starts = np.cumsum(counts) - counts
    positions = np.arange(counts.sum()) - np.repeat(starts, counts) + 1
    return rows, positions


def _subsample(size: int, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of a random subset of `cap` out of `size` (all, in order, when `cap` is None or large enough)."""
    if cap is None or cap >= size:
        return np.arange(size)
    return np.sort(rng.choice(size, size=cap, replace=False))


def _sequence_samples(catalogue: _Catalogue, task: str, cap: int | None, rng: np.random.Generator) -> dict[str, list]:
    rows, positions = _prefixes(catalogue)
    chosen = _subsample(len(rows), cap, rng)
    fields: dict[str, list] = {"history": [], "item": []}
    with_texts = task == "fusionseqrec"
    if with_texts:
        fields.update(history_titles=[], title=[], description=[])
    for row, position in zip(rows[chosen].tolist(), positions[chosen].tolist()):
        sequence = catalogue.sequences[row]
        past, target = sequence[:position], sequence[position]
        fields["history"].append(catalogue.history(past))
        fields["item"].append(catalogue.tokens[target])
        if with_texts:
            fields["history_titles"].append(catalogue.history_titles(past))
            fields["title"].append(catalogue.titles[target])
            fields["description"].append(catalogue.descriptions[target])
    return fields


def _item_samples(catalogue: _Catalogue, cap: int | None, rng: np.random.Generator) -> dict[str, list]:
    chosen = [catalogue.item_ids[i] for i in _subsample(len(catalogue.item_ids), cap, rng).tolist()]
    return {
        "item": [catalogue.tokens[item] for item in chosen],
        "title": [catalogue.titles[item] for item in chosen],
        "description": [catalogue.descriptions[item] for item in chosen],
    }


def _user_samples(
    catalogue: _Catalogue, task: str, texts: UserTexts, cap: int | None, rng: np.random.Generator
) -> dict[str, list]:
    """One sample per user with the needed text: itemsearch aims at the training target, preferenceobtain reads the
    whole training sequence."""
    needed = texts.intentions if task == "itemsearch" else texts.preferences
    rows = [row for row, user in enumerate(catalogue.user_ids) if user in needed]
    missing = len(catalogue.user_ids) - len(rows)
    if missing:
        logger.info(
            "%s: %d of %d users have no %s text and get no sample",
            task,
            missing,
            len(catalogue.user_ids),
            _USER_TEXT_TASKS[task],
        )
    rows = [rows[i] for i in _subsample(len(rows), cap, rng).tolist()]
    fields: dict[str, list] = {"history": [], "preference": []}
    if task == "itemsearch":
        fields.update(intention=[], item=[])
    for row in rows:
        user, sequence = catalogue.user_ids[row], catalogue.sequences[row]
        fields["preference"].append(tuple(_sentence(text) for text in texts.preferences.get(user, ())))
        if task == "itemsearch":
            fields["history"].append(catalogue.history(sequence[:-1]))
            fields["intention"].append(tuple(_sentence(text) for text in texts.intentions[user]))
            fields["item"].append(catalogue.tokens[sequence[-1]])
        else:
            fields["history"].append(catalogue.history(sequence))
    return fields


def _missing_data(task: str, texts: UserTexts | None, catalogue: _Catalogue) -> str | None:
    """Why `task` cannot be built from this data, or None when it can."""
    if task in _ITEM_TEXT_TASKS and not catalogue.has_item_text:
        return (
            f"task {task} skipped: it needs item titles or descriptions, but every item's are empty "
            "(a dataset prepared from a release without D.item.json); strict=True (CLI: --strict) makes this an error."
        )
    if task not in _USER_TEXT_TASKS:
        return None
    kind = _USER_TEXT_TASKS[task]
    if texts is None:
        reason = "the dataset has no `users` split and no user_texts file was given"
    elif not (texts.intentions if kind == "intention" else texts.preferences):
        reason = f"{texts.source} holds no {kind} texts"
    else:
        return None
    return (
        f"task {task} skipped: it needs per-user {kind} text, but {reason}. "
        "Write it with `lcrec augment --data DIR --out DIR/users.jsonl` and pass user_texts=DIR/users.jsonl "
        "(CLI: --user-texts); "
        "strict=True (CLI: --strict) makes this an error."
    )


def _seed_sequence(*keys: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(key) for key in keys])


class TaskMix:
    """The samples of a task mix, built once; `render(epoch)` gives that epoch's prompt/completion Dataset."""

    def __init__(self, samples: Mapping[str, _TaskSamples | SequenceSamples], seed: int):
        self.samples = dict(samples)
        self.seed = seed

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks actually in the mix (skipped ones are absent)."""
        return tuple(self.samples)

    @property
    def counts(self) -> dict[str, int]:
        """Samples per task (every epoch has the same samples)."""
        return {task: len(samples) for task, samples in self.samples.items()}

    def __len__(self) -> int:
        return sum(self.counts.values())

    @classmethod
    def build(
        cls,
        dataset: DatasetDict,
        item_index: ItemIndex,
        tasks: Iterable[str] = TASKS,
        *,
        samples_per_task: Mapping[str, int | None] | None = None,
        seed: int = 0,
        max_history: int = DEFAULT_MAX_HISTORY,
        user_texts: str | Path | UserTexts | None = None,
        strict: bool = False,
        templates: Mapping[str, Sequence[Template]] | None = None,
    ) -> TaskMix:
        """Collect the samples of `tasks`.

        samples_per_task caps tasks at a random subset (default: fusionseqrec at 20,000; None = all).
        user_texts: an augment .jsonl, an LC-Rec user.json or a UserTexts; default the `users` split.
        A task whose data is missing is skipped with a logged warning, or raises MissingTaskDataError when strict.
        `sequence` rows are windows of `max_history + 1` items of every training sequence (never capped).
        templates overrides a task's package templates (e.g. from `load_templates_file`).
        """
        tasks = list(dict.fromkeys(tasks))
        unknown = [task for task in tasks if task not in _TASK_KEYS]
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; tasks: {list(MIX_TASKS)}")
        if not tasks:
            raise ValueError("no tasks requested")
        caps = {**DEFAULT_SAMPLES_PER_TASK, **(samples_per_task or {})}
        for task, cap in caps.items():
            if task not in _TASK_KEYS:
                raise ValueError(f"samples_per_task names an unknown task {task!r}; tasks: {list(MIX_TASKS)}")
            if cap is not None and cap < 1:
                raise ValueError(f"samples_per_task[{task!r}] must be a positive count or None, got {cap}")
            if cap is not None and task == SEQUENCE_TASK:
                raise ValueError(
                    f"samples_per_task cannot cap {SEQUENCE_TASK!r}: its rows are every training sequence's windows"
                )
        catalogue = _Catalogue(dataset, item_index, max_history)
        texts = user_texts if isinstance(user_texts, UserTexts) else None
        if texts is None and any(task in _USER_TEXT_TASKS for task in tasks):
            texts = load_user_texts(dataset, user_texts)
        samples = {}
        for task in tasks:
            reason = _missing_data(task, texts, catalogue)
            if reason is not None:
                if strict:
                    raise MissingTaskDataError(reason)
                logger.warning(reason)
                continue
            if task == SEQUENCE_TASK:
                samples[task] = SequenceSamples.build(catalogue.sequences, catalogue.tokens, max_history)
                continue
            rng = np.random.default_rng(_seed_sequence(seed, _TASK_KEYS[task], 0))
            if task in ("seqrec", "fusionseqrec"):
                fields = _sequence_samples(catalogue, task, caps.get(task), rng)
            elif task in ("item2index", "index2item"):
                fields = _item_samples(catalogue, caps.get(task), rng)
            else:
                fields = _user_samples(catalogue, task, texts, caps.get(task), rng)
            task_templates = tuple(templates[task]) if templates and task in templates else load_templates(task)
            samples[task] = _keep_fillable(task, task_templates, fields)
        return cls(samples, seed)

    def render(self, epoch: int = 0) -> Dataset:
        """This epoch's rows (prompt, completion, task, template_id), shuffled; same (seed, epoch) -> same rows."""
        columns: dict[str, list] = {"prompt": [], "completion": [], "task": [], "template_id": []}
        for task, samples in self.samples.items():
            if isinstance(samples, SequenceSamples):
                samples.render(columns)
                continue
            rng = np.random.default_rng(_seed_sequence(self.seed, _TASK_KEYS[task], 1, epoch))
            _render_task(samples, rng, columns)
        order = np.random.default_rng(_seed_sequence(self.seed, 2, epoch)).permutation(len(columns["prompt"]))
        shuffled = {name: [values[i] for i in order.tolist()] for name, values in columns.items()}
        return Dataset.from_dict(shuffled, features=MIX_FEATURES)

    def render_epochs(self, num_epochs: int, first_epoch: int = 0) -> Dataset:
        """Epochs first_epoch .. first_epoch+num_epochs-1 one after another (train them as one pass)."""
        if num_epochs < 1:
            raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
        return concatenate_datasets([self.render(epoch) for epoch in range(first_epoch, first_epoch + num_epochs)])


def _keep_fillable(task: str, templates: Sequence[Template], fields: dict[str, list]) -> _TaskSamples:
    """Drop (counted, logged) the samples no template can be filled for, e.g. an item with neither title nor
    description."""
    if not fields or not next(iter(fields.values())):
        logger.warning("task %s has no samples in this dataset", task)
        return _TaskSamples(task, tuple(templates), fields, np.zeros((0, len(templates)), dtype=bool))
    missing_fields = {name for template in templates for name in template.fields} - set(fields)
    if missing_fields:
        raise ValueError(f"task {task}: templates use fields {sorted(missing_fields)} this task does not provide")
    eligible = _eligibility(templates, fields)
    fillable = eligible.any(axis=1)
    dropped = int((~fillable).sum())
    if dropped:
        logger.warning(
            "task %s: %d of %d samples lack the texts every template needs and were left out",
            task,
            dropped,
            len(fillable),
        )
        keep = np.flatnonzero(fillable).tolist()
        fields = {name: [values[i] for i in keep] for name, values in fields.items()}
        eligible = eligible[fillable]
    return _TaskSamples(task, tuple(templates), fields, eligible)


def _render_task(samples: _TaskSamples, rng: np.random.Generator, columns: dict[str, list]) -> None:
    """Draw a template per sample (uniform over those it can fill), pick one text per alternatives, render."""
    if not len(samples):
        return
    scores = rng.random(samples.eligible.shape)
    scores[~samples.eligible] = -1.0
    template_ids = scores.argmax(axis=1).tolist()
    picks = {}
    for name, values in samples.fields.items():
        if values and isinstance(values[0], tuple):
            draws = rng.random(len(values)).tolist()
            picks[name] = [
                options[int(draw * len(options))] if options else "" for options, draw in zip(values, draws)
            ]
        else:
            picks[name] = values
    for i, template_id in enumerate(template_ids):
        template = samples.templates[template_id]
        prompt, completion = template.render(**{name: picks[name][i] for name in template.fields})
        columns["prompt"].append(prompt)
        columns["completion"].append(completion)
        columns["task"].append(samples.task)
        columns["template_id"].append(template.template_id)


def build_task_mix(
    dataset: DatasetDict,
    item_index: ItemIndex,
    tasks: Iterable[str] = TASKS,
    *,
    samples_per_task: Mapping[str, int | None] | None = None,
    seed: int = 0,
    max_history: int = DEFAULT_MAX_HISTORY,
    epoch: int = 0,
    user_texts: str | Path | UserTexts | None = None,
    strict: bool = False,
    templates: Mapping[str, Sequence[Template]] | None = None,
) -> Dataset:
    """The training mix for one epoch: prompt/completion/task/template_id rows (`TaskMix.build` has the options)."""
    mix = TaskMix.build(
        dataset,
        item_index,
        tasks,
        samples_per_task=samples_per_task,
        seed=seed,
        max_history=max_history,
        user_texts=user_texts,
        strict=strict,
        templates=templates,
    )
    return mix.render(epoch)


def build_validation_mix(
    dataset: DatasetDict,
    item_index: ItemIndex,
    *,
    seed: int = 0,
    max_history: int = DEFAULT_MAX_HISTORY,
    split: str = "validation",
    template_id: int | None = None,
    templates: Sequence[Template] | None = None,
    prompt_format: str = INSTRUCTION_FORMAT,
) -> Dataset:
    """seqrec rows on `split`'s targets (one per user) for validation loss; template drawn per row, or fixed by
    template_id.

    prompt_format "sequence" renders them as recommend() asks a model trained on the `sequence` task instead.
    """
    if split not in dataset:
        raise ValueError(f"the dataset has no {split!r} split (splits: {list(dataset)})")
    if prompt_format not in SEQREC_FORMATS:
        raise ValueError(f"prompt_format must be one of {SEQREC_FORMATS}, got {prompt_format!r}")
    catalogue = _Catalogue(dataset, item_index, max_history)
    rows = dataset[split].select_columns(["history", "target"]).to_dict()
    if prompt_format == SEQUENCE_FORMAT:
        prompts = [
            sequence_prompt([catalogue.tokens[item] for item in history], max_history) for history in rows["history"]
        ]
        return Dataset.from_dict(
            {
                "prompt": prompts,
                "completion": [catalogue.tokens[target] for target in rows["target"]],
                "task": [SEQUENCE_TASK] * len(prompts),
                "template_id": [SEQUENCE_TEMPLATE_ID] * len(prompts),
            },
            features=MIX_FEATURES,
        )
    fields = {
        "history": [catalogue.history(history) for history in rows["history"]],
        "item": [catalogue.tokens[target] for target in rows["target"]],
    }
    seqrec_templates = tuple(templates) if templates is not None else load_templates("seqrec")
    if template_id is not None:
        if not 0 <= template_id < len(seqrec_templates):
            raise ValueError(
                f"template_id {template_id} is out of range: seqrec has {len(seqrec_templates)} templates"
            )
        seqrec_templates = (seqrec_templates[template_id],)
    samples = _keep_fillable("seqrec", seqrec_templates, fields)
    columns: dict[str, list] = {"prompt": [], "completion": [], "task": [], "template_id": []}
    _render_task(samples, np.random.default_rng(_seed_sequence(seed, _TASK_KEYS["seqrec"], 3)), columns)
    return Dataset.from_dict(columns, features=MIX_FEATURES)
