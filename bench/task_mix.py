"""Task-mix construction speed: build the samples once, render one template draw per epoch.

Default: MovieLens-100K (offline asset, about 100k seqrec prefixes) with a random collision-free index.
`--data DIR --index PATH` measures a prepared dataset of your own. Prints a table; no assertions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def random_index(num_items: int, levels: int = 4, size: int = 256, seed: int = 0):
    """A collision-free random ItemIndex (the mix's speed does not depend on which codes items get)."""
    from lcrec.indexing import ItemIndex

    rng = np.random.default_rng(seed)
    flat = rng.choice(size**levels, size=num_items, replace=False)
    codes = np.stack([(flat // size**level) % size for level in range(levels)], axis=1)
    return ItemIndex(list(range(num_items)), codes, [size] * levels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", help="prepared dataset folder (default: prepare ml-100k in memory)")
    parser.add_argument("--index", help="index.json or folder (default: random codes)")
    parser.add_argument("--epochs", type=int, default=3, help="template draws to render")
    parser.add_argument("--fusionseqrec-samples", type=int, default=20_000)
    args = parser.parse_args()

    from lcrec.data import load_prepared, prepare_dataset
    from lcrec.indexing import ItemIndex
    from lcrec.tasks import TaskMix, build_validation_mix

    dataset = load_prepared(args.data) if args.data else prepare_dataset("ml-100k")
    index = ItemIndex.from_path(args.index) if args.index else random_index(dataset["items"].num_rows)

    rows = []

    def timed(stage: str, make):
        wall, cpu = time.perf_counter(), time.process_time()
        result = make()
        rows.append((stage, time.perf_counter() - wall, time.process_time() - cpu, len(result)))
        return result

    mix = timed(
        "build samples",
        lambda: TaskMix.build(dataset, index, samples_per_task={"fusionseqrec": args.fusionseqrec_samples}, seed=0),
    )
    for epoch in range(args.epochs):
        timed(f"render epoch {epoch}", lambda epoch=epoch: mix.render(epoch))
    timed("validation mix", lambda: build_validation_mix(dataset, index))

    # The CPU is shared: CPU seconds are the stable number, wall seconds show the contention.
    print(f"tasks: {mix.counts}")
    print(f"{'stage':<18}{'wall s':>8}{'cpu s':>8}{'wall/cpu':>10}{'rows':>10}{'cpu s per 100k rows':>21}")
    for stage, wall, cpu, count in rows:
        print(f"{stage:<18}{wall:>8.2f}{cpu:>8.2f}{wall / cpu:>10.1f}{count:>10}{cpu / count * 1e5:>21.2f}")


if __name__ == "__main__":
    main()
