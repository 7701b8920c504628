"""Embed item texts not yet in the embedding cache: ``python -m jobs.embed_items [--dataset amazon]``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import embeddings
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.embed_items", __doc__ or "")
    parser.add_argument("--dataset", help="whose items to embed (default: data.dataset)")
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("embed_items", args)

    def body() -> int:
        stats = embeddings.run(build_spark(cfg), cfg, dataset=args.dataset)
        print(
            f"items {stats['items']:,}, distinct texts {stats['texts']:,}: embedded {stats['embedded']:,}, "
            f"from cache {stats['cached']:,} (model {cfg.embeddings.model}); "
            f"item_text rows written {stats['item_text_written']:,}"
        )
        return 0

    return run_main("embed_items", body)


if __name__ == "__main__":
    sys.exit(main())
