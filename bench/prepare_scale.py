"""Scale benchmark for `lcrec prepare`: synthetic Amazon-2018-style ratings CSV + metadata, wall time and peak memory.

    .venv/bin/python bench/prepare_scale.py                       # 1M and 5M interactions (a few minutes)
    .venv/bin/python bench/prepare_scale.py --sizes 20000000      # bigger runs

Targets (2-core machine): 5M interactions in under 60 s and under 4 GB peak memory.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

TARGET_SECONDS = 60.0
TARGET_GB = 4.0


def write_synthetic(
    folder: Path, interactions: int, seed: int, compress: bool, reviews: str = "csv"
) -> tuple[Path, Path, int, int]:
    """Ratings `item,user,rating,timestamp` (or reviews JSON lines) with power-law user activity and item
    popularity, plus metadata JSON lines."""
    rng = np.random.default_rng(seed)
    num_users = max(interactions // 12, 10)
    num_items = max(interactions // 50, 10)
    users = rng.permutation(num_users)[(rng.pareto(1.5, interactions) * num_users / 30).astype(np.int64) % num_users]
    items = (rng.pareto(1.2, interactions) * num_items / 20).astype(np.int64) % num_items
    timestamps = rng.integers(1_300_000_000, 1_600_000_000, interactions)
    table = pa.table(
        {
            "item": pa.array(np.char.add("B", items.astype("U10"))),
            "user": pa.array(np.char.add("A", users.astype("U10"))),
            "rating": pa.array(rng.integers(1, 6, interactions).astype(np.float64)),
            "timestamp": pa.array(timestamps),
        }
    )
    if reviews == "json":
        ratings = folder / "Synthetic_5.json"
        frame = table.rename_columns(["asin", "reviewerID", "overall", "unixReviewTime"]).to_pandas()
        frame.to_json(ratings, orient="records", lines=True)
    else:
        ratings = folder / "Synthetic.csv"
        pacsv.write_csv(table, ratings, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    meta = folder / ("meta_Synthetic.json.gz" if compress else "meta_Synthetic.json")
    opener = gzip.open if compress else open
    words = np.array("steel blue compact deluxe portable classic wireless organic heavy light pro mini".split())
    with opener(meta, "wt", encoding="utf-8") as handle:
        for item in range(num_items):
            name = " ".join(words[(item * np.array([7, 3, 5])) % len(words)])
            record = {
                "asin": f"B{item}",
                "title": f"{name.title()} gadget #{item}",
                "description": [f"A {name} gadget &amp; <b>friends</b>.", "Made to last."],
                "brand": f"Brand{item % 997}",
                "category": ["Synthetic", f"Group {item % 31}"],
            }
            if item % 97 == 0:
                record["title"] = ""  # some items without title: still have a description
            if item % 211 == 0:
                record["description"] = []  # and some with no text at all: dropped and counted
                record["title"] = ""
            handle.write(json.dumps(record) + "\n")
    return ratings, meta, num_users, num_items


def run_prepare(ratings: Path, meta: Path, out: Path) -> tuple[float, float, float, str]:
    """Run `lcrec prepare` in a child process; (wall s, CPU s, peak RSS GB of the child, its output)."""
    command = [
        sys.executable,
        "-m",
        "lcrec.cli",
        "prepare",
        "--source",
        str(ratings),
        "--format",
        "amazon2018",
        "--meta",
        str(meta),
        "--out",
        str(out),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"lcrec prepare failed:\n{result.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, after.ru_maxrss / 1024**2, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000], help="interaction counts to run"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gzip", action="store_true", help="gzip the metadata file")
    parser.add_argument(
        "--reviews", choices=("csv", "json"), default="csv", help="ratings-only CSV (default) or reviews JSON lines"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to write the synthetic files (default: a temporary folder)"
    )
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for size in sorted(args.sizes):
            folder = Path(tmp) / str(size)
            folder.mkdir()
            start = time.perf_counter()
            ratings, meta, _, _ = write_synthetic(folder, size, args.seed, args.gzip, args.reviews)
            generate = time.perf_counter() - start
            seconds, cpu, peak_gb, output = run_prepare(ratings, meta, folder / "prepared")
            stats = json.loads((folder / "prepared" / "stats.json").read_text())
            print(output)
            rows.append((size, stats, generate, seconds, cpu, peak_gb))
    # ru_maxrss of children is the maximum over all children so far: runs go smallest first.
    header = (
        f"{'interactions':>12} {'after':>10} {'users':>9} {'items':>8} {'gen s':>6} {'wall s':>7} {'cpu s':>6} "
        f"{'wall s/M':>8} {'peak GB':>8} {'wall/target':>11} {'mem/target':>10}"
    )
    print(header)
    print("-" * len(header))
    for size, stats, generate, seconds, cpu, peak_gb in rows:
        after = stats["after"]
        print(
            f"{size:>12,} {after['interactions']:>10,} {after['users']:>9,} {after['items']:>8,} {generate:>6.1f} "
            f"{seconds:>7.1f} {cpu:>6.1f} {seconds / size * 1e6:>8.1f} {peak_gb:>8.2f} "
            f"{seconds / TARGET_SECONDS:>10.2f}x {peak_gb / TARGET_GB:>9.2f}x"
        )
    print(f"targets for 5M: < {TARGET_SECONDS:.0f} s and < {TARGET_GB:.0f} GB (ratio < 1.00x meets it)")
    print("wall/cpu s: the whole `lcrec prepare` process (startup, read, protocol, save); peak GB: its max RSS;")
    print(
        "stage seconds inside the run are in each stats.json "
        "('seconds': protocol only, 'total_seconds': read+protocol)"
    )


if __name__ == "__main__":
    main()
