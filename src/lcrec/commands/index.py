"""`lcrec index`: build the semantic item index of a prepared dataset."""

from __future__ import annotations

import argparse


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _sinkhorn_levels(text: str) -> list[int]:
    return [] if text.strip().lower() == "none" else _int_list(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="build semantic item IDs (text embeddings -> RQ-VAE -> collision-free index)",
        description="Embed item texts, train an RQ-VAE with Sinkhorn uniform mapping and give every item a distinct index.",
    )
    parser.add_argument("--data", required=True, help="prepared dataset folder (from `lcrec prepare`)")
    parser.add_argument("--out", required=True, help="index folder to write")
    parser.add_argument("--encoder", default="minilm", help="`minilm` (offline default), a model folder or a Hub id (encoder or causal LM)")
    parser.add_argument("--fields", default="title,description", help="item text fields to embed (default: title,description)")
    parser.add_argument("--embedding-mode", choices=("paper", "concat"), default="paper", help="paper: embed fields separately and average; concat: one text")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--codebook-size", type=_int_list, default=[256], help="codes per level: one size, or one per level (e.g. 256,256,256,256)")
    parser.add_argument("--code-dim", type=int, default=32)
    parser.add_argument("--hidden-sizes", type=_int_list, default=[256, 128, 64], help="encoder MLP widths (decoder mirrors them)")
    parser.add_argument("--sinkhorn-levels", type=_sinkhorn_levels, default=[-1], help="levels assigned with Sinkhorn in training (default -1 = last; `none`)")
    parser.add_argument("--sinkhorn-rounds", type=int, default=20, help="rounds of the paper's Sinkhorn conflict resolution before the guarantee")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 150, a CPU preset; the paper used thousands)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--schedule", choices=("constant", "linear", "cosine"), default="constant")
    parser.add_argument("--max-grad-norm", type=float, default=None)
    parser.add_argument("--eval-every", type=int, default=10, help="measure the collision rate every N epochs and keep the best checkpoint")
    parser.add_argument("--dead-code-restart", action=argparse.BooleanOptionalAction, default=True, help="re-seed unused codewords at each evaluation (default on)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, ...")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrec.data import load_prepared
    from lcrec.indexing import RQVAEConfig, RQVAETrainingArguments, build_index

    sizes = args.codebook_size * args.levels if len(args.codebook_size) == 1 else args.codebook_size
    if len(sizes) != args.levels:
        raise ValueError(f"--codebook-size lists {len(sizes)} sizes but --levels is {args.levels}")
    encoder = args.encoder
    if encoder == "minilm":
        from lcrec.assets import minilm_path

        encoder = str(minilm_path())
    items = load_prepared(args.data)["items"].to_list()
    config = RQVAEConfig(hidden_sizes=args.hidden_sizes, code_dim=args.code_dim, codebook_sizes=sizes, sinkhorn_levels=args.sinkhorn_levels)
    training = RQVAETrainingArguments(
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        schedule=args.schedule,
        max_grad_norm=args.max_grad_norm,
        eval_every=args.eval_every,
        dead_code_restart=args.dead_code_restart,
        seed=args.seed,
        device=args.device,
        **({"epochs": args.epochs} if args.epochs is not None else {}),
    )
    fields = [name.strip() for name in args.fields.split(",") if name.strip()]
    result = build_index(items, args.out, encoder=encoder, config=config, training_args=training, fields=fields, embedding_mode=args.embedding_mode, sinkhorn_rounds=args.sinkhorn_rounds)
    stats = result.stats
    print(f"index: {stats['num_items']} items, {stats['levels']} levels x {stats['codebook_sizes']} codes -> {args.out}")
    print(f"collisions: {stats['colliding_items_before_resolution']} items before resolution, "
          f"{stats['colliding_items_after_sinkhorn']} after {stats['sinkhorn_rounds']} Sinkhorn rounds, {stats['collisions']} final")
    print("level  utilisation  entropy(bits)")
    for level, (used, entropy) in enumerate(zip(stats["utilization"], stats["entropy"]), start=1):
        print(f"{level:>5}  {used:>11.1%}  {entropy:>13.2f}")
    print(f"seconds: {stats['seconds']:.1f} (embedding {stats['embedding_seconds']:.1f}, RQ-VAE + assignment {stats['training_seconds']:.1f})")
    return 0
