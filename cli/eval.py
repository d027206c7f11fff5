"""``tastebud eval``: the offline evaluation protocol on any data the build accepts."""

from __future__ import annotations

import argparse
import json

from tastebud.cli.build import read_inputs


def run_eval_command(args: argparse.Namespace) -> int:
    from tastebud.embed.encoder import SentenceTransformerEncoder
    from tastebud.evaluate.runner import EvalOptions, format_report, run_eval
    from tastebud.index.build import BuildOptions
    from tastebud.train.two_tower import TwoTowerConfig

    dataset = read_inputs(args)
    build = BuildOptions(n_shards=args.shards, factory=args.factory, seed=args.seed, progress=not args.no_progress,
                         retrieval=args.retrieval, two_tower=TwoTowerConfig(members=args.members))
    options = EvalOptions(work_dir=args.work, views=tuple(v.strip() for v in args.views.split(",") if v.strip()),
                          build=build, via=args.via, baselines=args.baselines)
    encoder = SentenceTransformerEncoder(args.model)

    def progress(view: str, result: dict) -> None:
        s = result["tastebud"]
        print(f"{view}: NDCG@10 {s['ndcg@10']:.4f}, Recall@10 {s['recall@10']:.4f} ({result['seconds']}s)", flush=True)

    report = run_eval(dataset, encoder, options, on_view=progress)
    if args.lists:
        args.lists.mkdir(parents=True, exist_ok=True)
        for view, result in report["views"].items():
            with open(args.lists / f"{view}.jsonl", "w", encoding="utf-8") as f:
                for user, items in sorted(result["lists"].items()):
                    f.write(json.dumps({"user": user, "items": items}) + "\n")
    for result in report["views"].values():
        result.pop("lists", None)
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
