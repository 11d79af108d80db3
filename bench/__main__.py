"""`python -m bench` (or `make bench`): run every benchmark at its CPU defaults and print the ratios."""

from __future__ import annotations

import sys

from bench import (
    finetune_brand,
    ingest_throughput,
    sampling_vs_pipeline,
    serving,
    watermark,
)


def main() -> None:
    """Run each benchmark in turn; each prints its own table and writes JSON under bench-output/."""
    sampling_vs_pipeline.main(sys.argv[1:])
    ingest_throughput.main([])
    finetune_brand.main([])
    serving.main([])
    watermark.main([])


if __name__ == "__main__":
    main()
