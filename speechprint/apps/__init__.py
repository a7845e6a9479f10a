"""Applications over the library: quickstart, reports, probes, benchmarks, experiments, prediction."""
