"""A category no rule was chosen on: `lcrec preset` end to end on a seeded Beauty subsample, LC-Rec vs SASRec.

    .venv/bin/python bench/heldout.py --split validation        # about 15 min on 2 cores
    .venv/bin/python bench/heldout.py --split test --reuse       # then the test split, once, on the same models

The issue's check category (4,899 users, 2,416 items) is not in this repo; this builds one of its size from
LETTER's Amazon Beauty release (../shared/data/beauty): a seeded sample of users, the items they buy most, and a
5-core filter, renumbered, with the released semantic IDs of those items. No preset rule was derived from it.
Each step is the command a user with such data would type (one torch thread each):
 1. lcrec prepare --format lcrec                 interactions + released index (no item text)
 2. lcrec baseline sasrec --split validation --save_model   the SASRec baseline, early-stopped on validation
 3. lcrec preset --teacher                       SFT options derived from the data within --cpu-minutes
 4. lcrec train, lcrec evaluate                  LC-Rec on every user of the split
 5. bench/paired.py, lcrec baseline most_popular  both methods on the same users, with intervals
Artifacts go to bench/out/heldout/. Not a CI test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from beauty import COMMANDS, run_lcrec  # bench/beauty.py: one lcrec command, timed, one torch thread

REPO = Path(__file__).resolve().parents[1]


def subsample(source: Path, users: int, items: int, seed: int) -> tuple[dict, dict]:
    """({user: items in time order}, {item: codes}): `users` seeded users, their `items` most bought items, 5-core."""
    interactions = json.loads((source / "Beauty.inter.json").read_text())
    codes = json.loads((source / "Beauty.index.json").read_text())
    order = sorted(interactions, key=int)
    random.Random(seed).shuffle(order)
    sequences = {user: [int(item) for item in interactions[user]] for user in order[:users]}
    kept = {item for item, _ in Counter(i for s in sequences.values() for i in s).most_common(items)}
    while True:  # 5-core: users and items with at least 5 interactions, until nothing changes
        sequences = {u: s for u, s in ((u, [i for i in s if i in kept]) for u, s in sequences.items()) if len(s) >= 5}
        counts = Counter(i for s in sequences.values() for i in s)
        core = {item for item in kept if counts[item] >= 5}
        if core == kept:
            break
        kept = core
    item_ids = {item: number for number, item in enumerate(sorted(kept))}
    renumbered = {str(n): [item_ids[i] for i in sequences[u]] for n, u in enumerate(sorted(sequences, key=int))}
    return renumbered, {str(item_ids[item]): codes[str(item)] for item in sorted(kept)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(REPO.parent / "shared/data/beauty"), help="LETTER's Beauty folder")
    parser.add_argument("--out", default="bench/out/heldout")
    parser.add_argument("--users", type=int, default=11_000, help="users sampled before the 5-core filter")
    parser.add_argument("--items", type=int, default=2_500, help="most bought items kept before the 5-core filter")
    parser.add_argument("--sample-seed", type=int, default=7)
    parser.add_argument("--cpu-minutes", type=float, default=None, help="budget of `lcrec preset` (its default)")
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("--reuse", action="store_true", help="keep the data, SASRec and model already under --out")
    args = parser.parse_args()

    out = Path(args.out)
    raw, data, sasrec, model = out / "raw", out / "data", out / "sasrec", out / "model"
    if not (args.reuse and data.is_dir()):
        from lcrec.io_utils import write_json

        sequences, codes = subsample(Path(args.source), args.users, args.items, args.sample_seed)
        write_json(raw / "BeautySub.inter.json", sequences, indent=None)
        write_json(raw / "BeautySub.index.json", codes, indent=None)
        run_lcrec("prepare", "--source", raw, "--format", "lcrec", "--out", data)
    if not (args.reuse and sasrec.is_dir()):
        run_lcrec(
            "baseline", "--model", "sasrec", "--data", data, "--split", "validation",
            "--save_model", sasrec, "--out", out / "sasrec-validation.json",
        )  # fmt: skip
    budget = [] if args.cpu_minutes is None else ["--cpu_minutes", args.cpu_minutes]
    if not (args.reuse and model.is_dir()):
        preset = out / "preset.yaml"
        index = data / "released_index.json"
        run_lcrec("preset", "--data", data, "--index", index, "--teacher", sasrec, *budget, "--out", preset)
        sft = run_lcrec("train", "--config", preset, "--output_dir", model)
        print(f"SFT: {sft['wall']} s wall, {sft['cpu']} s CPU", flush=True)
    split = args.split
    run_lcrec("evaluate", "--model", model, "--data", data, "--split", split, "--out", out / f"lcrec-{split}.json")
    run_lcrec("baseline", "--model", "pop", "--data", data, "--split", split, "--out", out / f"pop-{split}.json")
    paired = ["bench/paired.py", "--model", str(model), "--sasrec", str(sasrec), "--data", str(data), "--split", split]
    COMMANDS.append(" ".join(paired))
    single_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(REPO / paired[0]), *paired[1:]], env=single_thread, check=True)
    popular = json.loads((out / f"pop-{split}.json").read_text())
    print(f"most-popular on the same users: HR@10 {popular['HR@10']:.4f} / NDCG@10 {popular['NDCG@10']:.4f}")
    print("commands:\n  " + "\n  ".join(COMMANDS))


if __name__ == "__main__":
    main()
