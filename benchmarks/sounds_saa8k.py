"""The archive-wide sounds measurement (issue 23, item 6): which documented transfer patterns
saa8k's recordings show, per native language against the native-English readers.

    python benchmarks/sounds_saa8k.py ../shared/data/saa8k OUT [--cached-only] [--ship-reference]

Writes OUT/findings-sounds.html (the section alone), its CSVs and heatmap, and
OUT/sounds_native.json (what native readers were heard saying at each passage slot and per
phoneme: the reference ``speechprint pronounce`` ships as ``data/native-sounds.json``).
``--cached-only`` measures the recordings whose posteriors are already cached (a partial run
reports its own speaker counts); ``--ship-reference`` copies the native reference into the
package (``speechprint/data/native-sounds.json``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from speechprint.data.archive import load_archive
from speechprint.features.alignment import posterior_extractor
from speechprint.features.cache import FeatureCache, content_hash, resolve_cache_dir
from speechprint.findings import betray
from speechprint.findings.page import write_page

PACKAGE_REFERENCE = Path(__file__).resolve().parents[1] / "speechprint/data/native-sounds.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("archive")
    parser.add_argument("out")
    parser.add_argument("--cached-only", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--ship-reference", action="store_true", help="copy the native reference into the package"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame = load_archive(args.archive).with_audio
    if args.cached_only:
        cache = FeatureCache(resolve_cache_dir(None), posterior_extractor())
        cached = [cache.path_for(content_hash(p)).exists() for p in frame["path"]]
        frame = frame[cached].reset_index(drop=True)
    began = time.perf_counter()
    section = betray.measure(frame, out, jobs=args.jobs, progress=False)
    section.seconds = time.perf_counter() - began
    write_page(
        [section], out / "findings-sounds.html", title="SpeechPrint: sounds", subtitle=args.archive
    )
    print(section.summary)
    if args.ship_reference:  # what speechprint pronounce judges slots against
        shutil.copy(out / "sounds_native.json", PACKAGE_REFERENCE)
    print(f"{len(frame)} recordings, {section.seconds:.0f} s")


if __name__ == "__main__":
    main()
