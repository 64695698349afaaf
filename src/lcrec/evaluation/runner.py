"""Full-ranking evaluation of an LC-Rec model: trie-constrained beam search over every test user, once.

Users are split across processes with accelerate (`accelerate launch ... lcrec evaluate`); results are
gathered, the padding duplicates removed, and the count checked, so no user is dropped or counted twice.
"""

from __future__ import annotations

import logging
import time

import torch
from datasets import DatasetDict
from tqdm.auto import tqdm

from ..generation import resolve_num_beams
from ..indexing.coverage import check_index_covers_dataset
from .config import EvaluationConfig, template_ids
from .metrics import METRIC_NAMES, max_cutoff, mean_metrics
from .ranking import finalize_ranking, select_rows
from .report import build_metrics_record

logger = logging.getLogger(__name__)


def check_catalogue(tokenizer, dataset: DatasetDict) -> None:
    """Raise when the model's item index is not the dataset's catalogue (other items, or other titles)."""
    check_index_covers_dataset(tokenizer.item_index, dataset, exact=True, index_source="the model's item index")
    items = dataset["items"]
    titles = getattr(tokenizer, "titles", None) or {}
    differing = [
        (item, titles[item], title)
        for item, title in zip(items["item_id"], items["title"])
        if titles.get(int(item)) and title and titles[int(item)] != title
    ]
    if differing:
        item, model_title, data_title = differing[0]
        raise ValueError(
            f"the model's item titles differ from the dataset's for {len(differing)} items, e.g. item {item}: "
            f"model {model_title!r} vs dataset {data_title!r}; was the model trained on this dataset?"
        )


def evaluate_model(
    model, dataset: DatasetDict, config: EvaluationConfig | None = None, output_file: str | None = None
) -> dict:
    """Evaluate `model.recommend` on `config.split`; every process returns the same metrics.json record.

    Under several processes (accelerate) each takes a share of the users; the main process writes
    `output_file` when given.
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from ..io_utils import write_json

    config = config or EvaluationConfig()
    # Without an accelerator, processes started by torchrun / accelerate launch talk over gloo on the CPU.
    state = PartialState(cpu=not torch.cuda.is_available())
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise ValueError("the model has no tokenizer attached (load it from a folder with index.json)")
    check_catalogue(tokenizer, dataset)
    templates = template_ids(config.templates, len(model.config.seqrec_templates or []))
    # The dataset's catalogue (check_catalogue made sure the model's index holds exactly these items).
    catalogue = set(int(item) for item in dataset["items"]["item_id"])
    # None: the model's generation_config.num_beams, at least the largest cut-off (the same default as recommend()).
    beams = min(resolve_num_beams(model, config.num_beams, max_cutoff(METRIC_NAMES)), len(catalogue))

    table = dataset[config.split]
    rows = select_rows(len(table), config.max_users, config.user_seed)
    subset = table.select(rows)
    histories = [[int(item) for item in history] for history in subset["history"]]
    targets = [int(target) for target in subset["target"]]
    unknown_history_users = sum(any(item not in catalogue for item in history) for history in histories)
    unknown_target_users = sum(target not in catalogue for target in targets)
    if unknown_history_users or unknown_target_users:
        logger.warning(
            "%d users have history items unknown to the index (skipped in their prompts); "
            "%d have an unknown target (always a miss)",
            unknown_history_users,
            unknown_target_users,
        )

    model.eval()
    model.to(state.device)
    started = time.perf_counter()
    positions = list(range(len(rows)))
    with state.split_between_processes(positions, apply_padding=True) as local:
        local_results = rank_users(model, histories, local, templates, beams, config, catalogue, state.is_main_process)
    results = gather_object(local_results) if state.num_processes > 1 else local_results
    seconds = time.perf_counter() - started

    ranked = {(position, template): items for position, template, items in results}
    expected = {(position, template) for position in positions for template in templates}
    if set(ranked) != expected:
        missing = sorted(expected - set(ranked))
        raise RuntimeError(
            f"evaluation lost {len(missing)} user x template results across {state.num_processes} processes, "
            f"e.g. {missing[:5]}"
        )

    k = max_cutoff(METRIC_NAMES)
    per_template, returned, invalid, short, short_at_k = {}, 0, 0, 0, 0
    for template in templates:
        lists = [ranked[(position, template)] for position in positions]
        returned += sum(len(items) for items in lists)
        invalid += sum(item not in catalogue for items in lists for item in items)
        short += sum(len(items) < beams for items in lists)
        final = [finalize_ranking(items, histories[p], k, config.exclude_history) for p, items in enumerate(lists)]
        # With exclude_history, beams that name seen items leave fewer than K: more beams refill the list.
        short_at_k = short_at_k + sum(len(items) < min(k, len(catalogue)) for items in final)
        per_template[str(template)] = mean_metrics(final, targets)
    record = build_metrics_record(
        per_template,
        method="lcrec",
        num_users=len(rows),
        num_beams=beams,
        invalid_rate=invalid / returned if returned else 0.0,
        seconds=seconds,
        exclude_history=config.exclude_history,
        split=config.split,
        max_users=config.max_users,
        user_seed=config.user_seed,
        templates=templates,
        short_list_rate=short / (len(rows) * len(templates)),
        short_at_k_rate=short_at_k / (len(rows) * len(templates)),
        unknown_history_users=unknown_history_users,
        unknown_target_users=unknown_target_users,
        num_processes=state.num_processes,
    )
    if output_file is not None and state.is_main_process:
        write_json(output_file, record)
    return record


def rank_users(
    model, histories, positions, templates, beams, config, catalogue, show_progress
) -> list[tuple[int, int, list[int]]]:
    """(position, template, ranked item ids) for the users at `positions` (this process's share); unknown history
    items are skipped, and a user with no known item gets an empty list (a miss).

    All of a template's users go to one `recommend` call: the decoder batches them itself (`config.batch_size`
    users per prefill and decoding loop; None lets it choose), which is far faster than many small calls.
    """
    results = []
    known = [p for p in positions if any(item in catalogue for item in histories[p])]
    prompts = [[item for item in histories[p] if item in catalogue] for p in known]
    progress = tqdm(total=len(positions) * len(templates), desc="evaluate", unit="user", disable=not show_progress)
    for template in templates:
        ranked = (
            model.recommend(
                prompts,
                top_k=beams,
                num_beams=beams,
                batch_size=config.batch_size,
                template=template,
                max_history=config.max_history,
            )
            if prompts
            else []
        )
        by_position = {p: [item for item, _ in items] for p, items in zip(known, ranked)}
        # A user without a single known history item gets an empty list: a miss, never a dropped user.
        results.extend((p, template, by_position.get(p, [])) for p in positions)
        progress.update(len(positions))
    progress.close()
    return results
