"""Thin wrapper: ``python benchmarks/bench_features.py ARCHIVE [--jobs N] [--limit N]``.

Same as ``speechprint features bench --archive ARCHIVE``; the logic lives in ``speechprint.apps.bench``.
"""

from __future__ import annotations

import argparse

from speechprint.apps.bench import archive_paths, format_report, run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("archive", help="archive folder, e.g. ../shared/data/saa8k")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    paths = archive_paths(args.archive, args.limit)
    print(format_report(run_benchmark(paths, jobs=args.jobs), label=args.archive))


if __name__ == "__main__":
    main()
