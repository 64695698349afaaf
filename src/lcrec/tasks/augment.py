"""Write per-user preference and intention texts with a local instruct model (the paper used a commercial LLM).

Output is JSON lines, one user per line: {"user_id", "raw_user_id", "preference", "intention", "model"}.
The file is appended batch by batch (whole lines, flushed and synced), so an interrupted run loses at most
the batch in flight; a rerun skips the users already written (and drops a cut-off last line first).
Join it into a task mix with `build_task_mix(..., user_texts=path)` or `lcrec tasks --user-texts path`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import DatasetDict
from tqdm.auto import tqdm

from ..prompts import DEFAULT_MAX_HISTORY

logger = logging.getLogger(__name__)

MAX_TITLE_CHARS = 120

PREFERENCE_PROMPT = (
    "A shopper chose these products, oldest first:\n{items}\n\n"
    "In one or two sentences, describe what this shopper likes: the kinds of products, features and styles "
    "they are drawn to. Do not list the products."
)
INTENTION_PROMPT = (
    'Product: "{target}"\n\n'
    "In one sentence, say what a shopper who wants this product needs it for, in their own voice. "
    "Do not mention the product's name or brand."
)
# The model's answer is started for it, which keeps small models from echoing the product name.
INTENTION_START = "I need"
# An intention that repeats this many leading characters of the target's title gives the answer away.
ECHO_CHARS = 24
# Greedy decoding of small models loops ("a product that is made with a product that ..."); this stops it.
NO_REPEAT_NGRAM = 3
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _display_title(title: str) -> str:
    return title.strip().rstrip(".").strip()[:MAX_TITLE_CHARS]


def _item_list(titles: Sequence[str]) -> str:
    return "\n".join(f"- {title}" for title in titles)


def read_done_users(path: Path) -> set[int]:
    """user_ids already in an augment file; a cut-off last line (interrupted write) is removed first."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        logger.warning("%s: removing a cut-off last line from an interrupted run", path)
        with path.open("r+b") as handle:
            handle.truncate(keep)
        data = data[:keep]
    done = set()
    for line_number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            done.add(int(json.loads(line)["user_id"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: line {line_number} is not an augment record with a user_id") from None
    return done


def _chat(tokenizer, text: str) -> str:
    """The prompt as the model expects it: its chat template when it has one, else plain text."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return f"{text}\n"


def _clean(text: str) -> str:
    """First paragraph of a generation, whitespace collapsed, quotes stripped, cut at its last full sentence."""
    text = " ".join(text.strip().split("\n\n")[0].split()).strip("\"' ")
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].rstrip() if ends and ends[-1] < len(text) else text


def _echoes(intention: str, title: str) -> bool:
    """Whether the intention repeats the title it should only hint at."""
    return bool(title) and title[:ECHO_CHARS].lower() in intention.lower()


@torch.no_grad()
def _generate(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    output = model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        no_repeat_ngram_size=NO_REPEAT_NGRAM,
        pad_token_id=tokenizer.pad_token_id,
    )
    new_tokens = output[:, batch["input_ids"].shape[1] :]
    return [_clean(text) for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def augment_user_texts(
    dataset: DatasetDict,
    model,
    tokenizer,
    out_path: str | os.PathLike,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    max_history: int = DEFAULT_MAX_HISTORY,
    max_users: int | None = None,
    model_name: str = "",
) -> int:
    """Generate texts for every train user not yet in `out_path` (appending as it goes); returns how many it wrote.

    For the preference the model sees the titles of the most recent `max_history` items of the training
    sequence; for the intention, the training target's title (the item the itemsearch task then asks for).
    Decoding is greedy, so a rerun reproduces the same texts.
    """
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError("batch_size and max_new_tokens must be positive")
    out_path = Path(out_path)
    titles = dict(zip(dataset["items"]["item_id"], (_display_title(t or "") for t in dataset["items"]["title"])))
    train = dataset["train"].select_columns(["user_id", "raw_user_id", "history", "target"]).to_dict()
    done = read_done_users(out_path)
    pending = [row for row, user in enumerate(train["user_id"]) if user not in done]
    total = len(train["user_id"]) if max_users is None else min(max_users, len(train["user_id"]))
    pending = pending[: max(total - len(done), 0)]
    if not pending:
        logger.info("%s already holds texts for %d users; nothing to do", out_path, len(done))
        return 0
    logger.info("writing texts for %d users to %s (%d already there)", len(pending), out_path, len(done))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    written = empty = echoed = 0
    with (
        out_path.open("a", encoding="utf-8") as handle,
        tqdm(total=len(pending), desc="augment", unit="user") as progress,
    ):
        for start in range(0, len(pending), batch_size):
            rows = pending[start : start + batch_size]
            prompts = []
            for row in rows:
                sequence = train["history"][row] + [train["target"][row]]
                seen = _item_list([titles[item] for item in sequence[-max_history:] if titles[item]])
                prompts.append(_chat(tokenizer, PREFERENCE_PROMPT.format(items=seen)))
                prompts.append(
                    _chat(tokenizer, INTENTION_PROMPT.format(target=titles[train["target"][row]] or "an item"))
                    + INTENTION_START
                )
            texts = _generate(model, tokenizer, prompts, max_new_tokens)
            lines = []
            for offset, row in enumerate(rows):
                preference, intention = (
                    texts[2 * offset],
                    f"{INTENTION_START} {texts[2 * offset + 1]}" if texts[2 * offset + 1] else "",
                )
                if _echoes(intention, titles[train["target"][row]]):
                    intention, echoed = "", echoed + 1
                empty += not preference or not intention
                record = {
                    "user_id": train["user_id"][row],
                    "raw_user_id": train["raw_user_id"][row],
                    "preference": preference,
                    "intention": intention,
                    "model": model_name,
                }
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
            written += len(rows)
            progress.update(len(rows))
    if echoed:
        logger.warning(
            "%d intentions repeated the target's title and were blanked (they would give the answer away)", echoed
        )
    if empty:
        logger.warning("%d users got an empty preference or intention; the task mix leaves those texts out", empty)
    return written
