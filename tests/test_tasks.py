"""The six task families: templates, the task mix, per-user texts and `lcrec tasks`."""

import json
import logging
import re

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from lcrec.indexing import ItemIndex
from lcrec.tasks import (
    TASK_SPECS,
    TASKS,
    MissingTaskDataError,
    TaskMix,
    build_task_mix,
    build_validation_mix,
    load_templates,
    load_user_texts,
    parse_templates,
)

PAPER_TEMPLATE_COUNTS = {
    "seqrec": 17,
    "item2index": 19,
    "index2item": 17,
    "fusionseqrec": 12,
    "itemsearch": 11,
    "preferenceobtain": 11,
}
NUM_ITEMS, NUM_USERS = 40, 24


def make_dataset(
    num_items: int = NUM_ITEMS, num_users: int = NUM_USERS, seed: int = 0, users_split: bool = True
) -> DatasetDict:
    """A prepared-dataset layout: items (some without title or description), leave-one-out splits, users texts."""
    rng = np.random.default_rng(seed)
    titles = [f"Gadget {i}." if i % 9 else "" for i in range(num_items)]
    descriptions = [f"A handy gadget of model {i}." if i % 6 else "" for i in range(num_items)]
    titles[0] = descriptions[0] = ""  # an item no item2index/index2item template can use
    items = Dataset.from_dict(
        {
            "item_id": list(range(num_items)),
            "raw_id": [f"I{i}" for i in range(num_items)],
            "title": titles,
            "description": descriptions,
            "brand": [""] * num_items,
            "categories": [""] * num_items,
        }
    )
    rows = {"train": [], "validation": [], "test": []}
    for user in range(num_users):
        sequence = rng.choice(np.arange(1, num_items), size=int(rng.integers(3, 30)), replace=False).tolist()
        for split, cut in (("train", 3), ("validation", 2), ("test", 1)):
            rows[split].append(
                {"user_id": user, "raw_user_id": f"U{user}", "history": sequence[:-cut], "target": sequence[-cut]}
            )
    splits = {"items": items, **{name: Dataset.from_list(split) for name, split in rows.items()}}
    if users_split:
        splits["users"] = Dataset.from_dict(
            {
                "user_id": list(range(num_users)),
                "preference": [f"Likes gadgets of series {u % 3}" if u % 4 else "" for u in range(num_users)],
                "intention": [f"I need a gadget for task {u}" if u % 5 else "" for u in range(num_users)],
            }
        )
    return DatasetDict(splits)


def make_index(num_items: int = NUM_ITEMS) -> ItemIndex:
    ids = np.arange(num_items)
    return ItemIndex(ids.tolist(), np.stack([ids % 4, ids // 4 % 4, ids // 16, ids % 3], axis=1), [4, 4, 4, 3])


@pytest.fixture(scope="module")
def dataset():
    return make_dataset()


@pytest.fixture(scope="module")
def index():
    return make_index()


@pytest.fixture(scope="module")
def mix(dataset, index):
    return TaskMix.build(dataset, index, seed=3)


def test_template_counts_match_the_paper():
    assert {task: len(load_templates(task)) for task in TASKS} == PAPER_TEMPLATE_COUNTS


def test_every_form_of_every_task_has_templates():
    for task, spec in TASK_SPECS.items():
        used = {(frozenset(t.input_fields), frozenset(t.answer_fields)) for t in load_templates(task)}
        assert used == {(form.inputs, form.answers) for form in spec.forms}, task


def test_every_template_renders_for_its_task(mix, index):
    assert set(mix.tasks) == set(TASKS)
    for task, samples in mix.samples.items():
        for template in samples.templates:
            rows = np.flatnonzero(samples.eligible[:, template.template_id])
            assert len(rows), f"{task} template {template.template_id} fits no fixture sample"
            row = int(rows[0])
            fields = {
                name: (values[row][0] if isinstance(values[row], tuple) else values[row])
                for name, values in samples.fields.items()
            }
            prompt, completion = template.render(**{name: fields[name] for name in template.fields})
            assert prompt.startswith("### Task\n") and prompt.endswith("### Answer\n")
            assert "{" not in prompt and "}" not in prompt and completion.strip()
            if "item" in template.answer_fields:
                assert completion == fields["item"] and index.item_for_tokens(completion) in index


def test_unknown_placeholder_is_an_error_naming_task_template_and_placeholder():
    entries = [
        {"instruction": "History {history}.", "response": "{item}"},
        {"instruction": "Items {history} for {user_name}.", "response": "{item}"},
    ]
    with pytest.raises(ValueError, match=r"task 'seqrec' template 1: unknown placeholder \{user_name\}"):
        parse_templates("seqrec", entries)


@pytest.mark.parametrize(
    "task, entry, message",
    [
        ("item2index", {"instruction": "Give any index.", "response": "{item}"}, "no sample provides"),
        ("seqrec", {"instruction": "{history} then {item}", "response": "{item}"}, "no sample provides"),
        ("seqrec", {"instruction": "{history}", "response": "It is {item}"}, "exactly"),
        ("index2item", {"instruction": "{item}", "response": "{title!r}"}, "plain"),
        ("seqrec", {"instruction": "{history", "response": "{item}"}, "malformed"),
        ("seqrec", {"instruction": "{history}"}, "keys"),
    ],
)
def test_unsatisfiable_or_malformed_templates_are_rejected(task, entry, message):
    with pytest.raises(ValueError, match=message):
        parse_templates(task, [entry])


def test_same_seed_same_mix_and_other_seed_other_mix(dataset, index):
    first = build_task_mix(dataset, index, seed=5).to_dict()
    assert build_task_mix(dataset, index, seed=5).to_dict() == first
    assert build_task_mix(dataset, index, seed=6).to_dict() != first


def test_other_epoch_draws_other_templates_on_the_same_samples(mix):
    epoch0, epoch1 = mix.render(0), mix.render(1)
    assert epoch0.to_dict() == mix.render(0).to_dict()
    assert epoch0["template_id"] != epoch1["template_id"]
    seqrec = lambda rows: sorted(c for c, t in zip(rows["completion"], rows["task"]) if t == "seqrec")  # noqa: E731
    assert seqrec(epoch0) == seqrec(epoch1)
    both = mix.render_epochs(2)
    assert len(both) == 2 * len(epoch0) and both.select(range(len(epoch0))).to_dict() == epoch0.to_dict()


def test_sample_counts_follow_the_reference(dataset, index, mix):
    train = dataset["train"].to_dict()
    prefixes = sum(
        len(history) for history in train["history"]
    )  # training sequence history+[target]: len(history) prefixes
    users = dataset["users"].to_dict()
    assert mix.counts["seqrec"] == prefixes
    items = dataset["items"].to_dict()
    with_text = sum(1 for title, description in zip(items["title"], items["description"]) if title or description)
    assert with_text < NUM_ITEMS and mix.counts["item2index"] == mix.counts["index2item"] == with_text
    assert mix.counts["fusionseqrec"] == prefixes  # below the 20,000 default cap
    assert mix.counts["itemsearch"] == sum(1 for text in users["intention"] if text)
    assert mix.counts["preferenceobtain"] == sum(1 for text in users["preference"] if text)
    capped = TaskMix.build(dataset, index, ["seqrec", "fusionseqrec"], samples_per_task={"fusionseqrec": 10}, seed=3)
    assert capped.counts == {"seqrec": prefixes, "fusionseqrec": 10}
    rendered = mix.render(0)
    assert len(rendered) == len(mix) and rendered.column_names == ["prompt", "completion", "task", "template_id"]


def test_histories_are_recent_items_joined_and_titles_quoted(dataset, index):
    mix = build_task_mix(dataset, index, ["seqrec", "fusionseqrec"], max_history=3, seed=0)
    tokens = re.compile(r"(?:<[a-d]_\d+>){4}")
    for prompt, task in zip(mix["prompt"], mix["task"]):
        found = tokens.findall(prompt)
        assert len(found) <= 3
        if task == "seqrec":
            assert ", ".join(found) in prompt
    train = dataset["train"].to_dict()
    user = next(row for row, history in enumerate(train["history"]) if len(history) > 3)
    sequence = train["history"][user] + [train["target"][user]]
    expected = ", ".join(index.tokens(item) for item in sequence[-4:-1])
    assert expected in "\n".join(mix["prompt"])
    titled = [p for p, t in zip(mix["prompt"], mix["template_id"]) if t >= 8 and '"Gadget' in p]
    assert titled and all(not re.search(r'"Gadget \d+\."', p) for p in titled)


def test_completions_of_index_answers_are_exactly_the_index_tokens(mix, index):
    rows = mix.render(0)
    for completion, task, template_id in zip(rows["completion"], rows["task"], rows["template_id"]):
        if "item" in load_templates(task)[template_id].answer_fields:
            assert index.tokens(index.item_for_tokens(completion)) == completion


def test_missing_user_texts_skip_with_a_message_or_fail_when_strict(index, caplog):
    bare = make_dataset(users_split=False)
    with caplog.at_level(logging.WARNING, logger="lcrec.tasks"):
        mix = TaskMix.build(bare, index, seed=0)
    assert set(mix.tasks) == set(TASKS) - {"itemsearch", "preferenceobtain"}
    assert "task itemsearch skipped" in caplog.text and "task preferenceobtain skipped" in caplog.text
    assert "lcrec augment" in caplog.text
    with pytest.raises(MissingTaskDataError, match="itemsearch"):
        TaskMix.build(bare, index, ["seqrec", "itemsearch"], strict=True)


def test_a_dataset_without_item_texts_skips_the_text_tasks(index, caplog):
    """LC-Rec releases without D.item.json prepare with empty titles and descriptions: only index tasks can train."""
    textless = make_dataset(users_split=False)
    empty = [""] * len(textless["items"])
    items = textless["items"].remove_columns(["title", "description"])
    textless["items"] = items.add_column("title", empty).add_column("description", empty)
    with caplog.at_level(logging.WARNING, logger="lcrec.tasks"):
        mix = TaskMix.build(textless, index, ["seqrec", "item2index", "index2item", "fusionseqrec"], seed=0)
    assert mix.tasks == ("seqrec",) and mix.counts["seqrec"] > 0
    for task in ("item2index", "index2item", "fusionseqrec"):
        assert f"task {task} skipped: it needs item titles or descriptions" in caplog.text
    with pytest.raises(MissingTaskDataError, match="task item2index skipped"):
        TaskMix.build(textless, index, ["seqrec", "item2index"], strict=True)


def test_user_texts_from_augment_jsonl_and_lcrec_user_json(index, tmp_path, caplog):
    bare = make_dataset(users_split=False)
    target_of_u1 = f"I{bare['train'][1]['target']}"
    jsonl = tmp_path / "users.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps(
                {
                    "user_id": u,
                    "raw_user_id": f"U{u}",
                    "preference": f"Likes {u}",
                    "intention": "Wants one" if u < 3 else "",
                }
            )
            + "\n"
            for u in range(5)
        )
        + json.dumps({"raw_user_id": "nobody", "preference": "x", "intention": "y"})
        + "\n"
    )
    texts = load_user_texts(bare, jsonl)
    assert sorted(texts.preferences) == [0, 1, 2, 3, 4] and sorted(texts.intentions) == [0, 1, 2]
    assert TaskMix.build(bare, index, ["itemsearch", "preferenceobtain"], user_texts=jsonl).counts == {
        "itemsearch": 3,
        "preferenceobtain": 5,
    }

    lcrec_json = tmp_path / "D.user.json"
    lcrec_json.write_text(
        json.dumps(
            {
                "user_explicit_preference": {
                    "U1": ["Prefers sturdy gadgets.", "Avoids cheap ones."],
                    "U2": ["Likes colour."],
                },
                "user_vague_intention": {
                    "train": {
                        "U1": {
                            "item": target_of_u1,
                            "inters": [1],
                            "querys": ["I want a sturdy one.", "Something durable."],
                        }
                    },
                    "test": {"U2": {"item": 4, "inters": [1], "querys": ["test only"]}},
                },
            }
        )
    )
    with caplog.at_level(logging.WARNING, logger="lcrec.tasks"):
        texts = load_user_texts(bare, lcrec_json)
    assert "not the training target" not in caplog.text
    assert texts.preferences[1] == ("Prefers sturdy gadgets.", "Avoids cheap ones.") and set(texts.intentions) == {1}
    rows = build_task_mix(bare, index, ["itemsearch", "preferenceobtain"], user_texts=lcrec_json, seed=1)
    assert sorted(rows["task"]) == ["itemsearch", "preferenceobtain", "preferenceobtain"]
    assert not any("test only" in prompt for prompt in rows["prompt"])

    renamed = tmp_path / "renamed"
    renamed.mkdir()
    intention = {"train": {"7": {"item": 0, "inters": [], "querys": ["Something red."]}}}
    (renamed / "D.user.json").write_text(
        json.dumps({"user_explicit_preference": {"7": ["Likes colour."]}, "user_vague_intention": intention})
    )
    (renamed / "D.user2id").write_text("U2\t7\n")
    assert bare["train"][2]["target"] != 39
    (renamed / "D.item2id").write_text("I39\t0\n")  # the intention aims at item 39, not user 2's training target
    with caplog.at_level(logging.WARNING, logger="lcrec.tasks"):
        texts = load_user_texts(bare, renamed / "D.user.json")
    assert texts.preferences == {2: ("Likes colour.",)} and texts.intentions == {2: ("Something red.",)}
    assert "for 1 users the intention's item is not the training target" in caplog.text
    (renamed / "D.user2id").unlink()
    with pytest.raises(ValueError, match="none of its 1 users"):
        load_user_texts(bare, renamed / "D.user.json")


def test_bad_user_text_files_are_errors_naming_the_file(index, tmp_path):
    bad = tmp_path / "users.jsonl"
    bad.write_text('{"user_id": 0, "preference": "a"}\n{"user_id": 1, "pref')
    with pytest.raises(ValueError, match=r"users.jsonl: line 2: malformed JSON.*interrupted"):
        load_user_texts(make_dataset(users_split=False), bad)
    with pytest.raises(FileNotFoundError):
        load_user_texts(make_dataset(), tmp_path / "missing.jsonl")


def test_validation_mix_is_seqrec_on_the_validation_targets(dataset, index):
    valid = build_validation_mix(dataset, index, seed=0)
    targets = dataset["validation"]["target"]
    assert len(valid) == NUM_USERS and set(valid["task"]) == {"seqrec"}
    assert valid["completion"] == [index.tokens(target) for target in targets]
    fixed = build_validation_mix(dataset, index, template_id=4)
    assert set(fixed["template_id"]) == {4}
    assert build_validation_mix(dataset, index, seed=0).to_dict() == valid.to_dict()


def test_bad_arguments_are_named(dataset, index):
    with pytest.raises(ValueError, match="unknown tasks"):
        TaskMix.build(dataset, index, ["seqrec", "summarise"])
    with pytest.raises(ValueError, match="samples_per_task"):
        TaskMix.build(dataset, index, samples_per_task={"fusion": 3})
    with pytest.raises(ValueError, match="lacks 1 of"):
        TaskMix.build(dataset, make_index(NUM_ITEMS - 1), ["seqrec"])


def save_prepared_fixture(dataset: DatasetDict, folder) -> str:
    """The fixture as a `lcrec prepare` folder (DatasetDict + stats.json)."""
    dataset.save_to_disk(str(folder))
    (folder / "stats.json").write_text("{}\n")
    return str(folder)


def test_lcrec_tasks_writes_the_mix_and_prints_counts(dataset, index, tmp_path, capsys):
    from datasets import load_from_disk

    from lcrec.cli import main

    data = save_prepared_fixture(dataset, tmp_path / "data")
    index.save(tmp_path / "index" / "index.json")
    out = tmp_path / "tasks"
    argv = [
        "tasks",
        "--data",
        data,
        "--index",
        str(tmp_path / "index"),
        "--out",
        str(out),
        "--samples",
        "fusionseqrec=5",
        "--epochs",
        "2",
        "--seed",
        "3",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert re.search(r"fusionseqrec\s+5\n", printed) and "validation rows" in printed
    written = load_from_disk(str(out))
    expected = TaskMix.build(dataset, index, samples_per_task={"fusionseqrec": 5}, seed=3).render_epochs(2)
    assert written["train"].to_dict() == expected.to_dict()
    assert written["validation"].to_dict() == build_validation_mix(dataset, index, seed=3).to_dict()
    info = json.loads((out / "mix_info.json").read_text())
    assert info["counts"]["fusionseqrec"] == 5 and info["skipped"] == [] and info["rows"]["train"] == len(expected)

    assert main(["tasks", "--data", data, "--index", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "lcrec tasks: error:" in capsys.readouterr().err
    assert load_from_disk(str(out))["train"].num_rows == len(expected)  # a failed run leaves the old output alone
