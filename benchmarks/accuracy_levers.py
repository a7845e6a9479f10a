"""Issue 22's levers measured on saa8k's development speakers only (the test split is never read).

Each named recipe is scored by ``cross_validate`` on the folds of
``studies/saa-region17-pretrained.yaml`` (same data section: seed 0, 4 stratified folds, 1 repeat),
its out-of-fold rows written to ``OUT/<name>.json``; ``--against`` pairs recipes speaker by speaker
(``paired_oof``: A minus B with a bootstrap interval over the speakers both were scored on).
Features come from the feature cache of ``--cache-dir`` and are extracted for the development
speakers only, so a run never touches the 161 test speakers' recordings.

    python benchmarks/accuracy_levers.py --cache-dir /work/sp-cache final_mlp final_wccn \
        --against final_wccn:final_logreg
    python benchmarks/accuracy_levers.py --cache-dir /work/sp-cache --cached-only l5_mlp l5_crops

``--transfer SO762`` also refits each recipe on all development speakers (for the folds' median
best epoch, its model seeds averaged, as ``promote`` refits) and scores speechocean762's speakers
(each one's first 3 clips, other texts than the passage): the share called east asian, per age
group. A recipe can win on the archive's folds and lose on other corpora; this prints both.

    python benchmarks/accuracy_levers.py --cache-dir /work/sp-cache phones_mlp phones_mlp_ls10 \
        --against phones_mlp_ls10:phones_mlp --transfer ../shared/data/so762

``--cached-only`` keeps the development speakers whose frames are already cached (a stratified
subset when extraction runs in an interleaved order): every recipe of one invocation sees the same
speakers and folds, so their pairing is fair, but the figures are not the full set's.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.apps.crosscorpus import cross_corpus_score
from speechprint.data.corpora import load_corpus
from speechprint.data.dataset import Dataset, make_dataset
from speechprint.evaluation.evidence import paired_oof
from speechprint.features import extract_features, make_extractor
from speechprint.features.cache import FeatureCache, content_hash
from speechprint.inference.ensemble import EnsembleClassifier
from speechprint.release.refit import refit
from speechprint.train import RunConfig, run
from speechprint.train.cv import cross_validate, fold_datasets
from speechprint.train.run import model_seed_variants

ARCHIVE = "../shared/data/saa8k"
FINAL = {"name": "whisper_layers", "params": {"model": "base", "layer": "final"}}
LAYER5 = {"name": "whisper_encoder", "params": {"model": "base", "layer": 5}}
PHONES = {"name": "phones", "params": {"model": "base"}}
# The shipped study's champion: the final layer fused with ``phones``, its trial 24's MLP recipe.
FINAL_PHONES = {"name": "fusion", "params": {"parts": [FINAL, PHONES]}}
LANGUAGE = {"name": "whisper_language", "params": {"model": "base"}}
FINAL_PHONES_LANGUAGE = {"name": "fusion", "params": {"parts": [FINAL, PHONES, LANGUAGE]}}
PHONES_MLP = {"hidden": 256, "layers": 1, "dropout": 0.2217}
PHONES_TRAIN = {"lr": 0.000995, "weight_decay": 0.000223, "imbalance": "weighted", "batch_size": 64}
# The study's warm start (its previous champion's MLP recipe), trained the study's way.
MLP = {"hidden": 128, "layers": 1, "dropout": 0.5}
MLP_TRAIN = {"lr": 0.00054, "weight_decay": 0.0072, "imbalance": "weighted", "batch_size": 16}
STUDY_TRAIN = {"epochs": 40, "patience": 8}
TOP = {"model": "base", "from_layer": 5, "adapter": "lora", "rank": 8, "dropout": 0.3}
TOP_TRAIN = {
    "epochs": 12,
    "patience": 4,
    "lr": 0.001,
    "weight_decay": 0.01,
    "batch_size": 32,
    "max_frames": 100,
    "time_masks": 2,
    "time_mask_width": 10,
    "freq_masks": 2,
    "freq_mask_width": 16,
}

TOP_10S = {"max_frames": 250, "epochs": 20, "patience": 6, "time_mask_width": 25}


def top_recipe(adapter: str, train: dict[str, Any] | None = None, seeds: int = 3) -> dict[str, Any]:
    """``whisper_top`` over block-5 frames with ``adapter``, ``TOP_TRAIN`` updated by ``train``."""
    return {
        "extractor": LAYER5,
        "model": "whisper_top",
        "params": {**TOP, "adapter": adapter},
        "train": {**TOP_TRAIN, **(train or {})},
        "seeds": seeds,
    }


RECIPES: dict[str, dict[str, Any]] = {
    "final_logreg": {"extractor": FINAL, "model": "logreg", "params": {"C": 0.03}},
    "final_mlp": {"extractor": FINAL, "model": "mlp", "params": MLP, "train": MLP_TRAIN},
    "final_mlp_5seeds": {
        "extractor": FINAL,
        "model": "mlp",
        "params": MLP,
        "train": MLP_TRAIN,
        "seeds": 5,
    },
    "final_mlp_1seed": {
        "extractor": FINAL,
        "model": "mlp",
        "params": MLP,
        "train": MLP_TRAIN,
        "seeds": 1,
    },
    "final_wccn": {"extractor": FINAL, "model": "wccn", "params": {}},
    "final_wccn_64": {"extractor": FINAL, "model": "wccn", "params": {"components": 64}},
    "final_wccn_256": {"extractor": FINAL, "model": "wccn", "params": {"components": 256}},
    "final_lda": {"extractor": FINAL, "model": "lda", "params": {"shrinkage": 0.5}},
    # Block-5 frames: the same MLP on whole-recording statistics, and on crop statistics.
    "l5_mlp": {"extractor": LAYER5, "model": "mlp", "params": MLP, "train": MLP_TRAIN},
    "l5_crops4s": {
        "extractor": LAYER5,
        "model": "mlp",
        "params": MLP,
        "train": {**MLP_TRAIN, "crop_frames": 100, "crops": 4},
    },
    "l5_crops8s": {
        "extractor": LAYER5,
        "model": "mlp",
        "params": MLP,
        "train": {**MLP_TRAIN, "crop_frames": 200, "crops": 4},
    },
    "l5_logreg": {"extractor": LAYER5, "model": "logreg", "params": {"C": 0.03}},
    "phones_mlp": {
        "extractor": FINAL_PHONES,
        "model": "mlp",
        "params": PHONES_MLP,
        "train": PHONES_TRAIN,
    },
    # Softer targets: a higher cv on the archive, and other corpora no longer heard.
    "phones_mlp_ls10": {
        "extractor": FINAL_PHONES,
        "model": "mlp",
        "params": PHONES_MLP,
        "train": {**PHONES_TRAIN, "label_smoothing": 0.1},
    },
    # Variance down: the champion's recipe averaged over 5 model seeds instead of 3.
    "phones_mlp_5seeds": {
        "extractor": FINAL_PHONES,
        "model": "mlp",
        "params": PHONES_MLP,
        "train": PHONES_TRAIN,
        "seeds": 5,
    },
    # The champion's recipe with the spoken-language posteriors beside it (1024 + 21,115 + 99).
    "phones_lang_mlp": {
        "extractor": FINAL_PHONES_LANGUAGE,
        "model": "mlp",
        "params": PHONES_MLP,
        "train": PHONES_TRAIN,
    },
    # Attention over the 41 phonemes of the profile (one shared projection, phoneme embeddings,
    # a transformer layer, attentive pooling): the phonemes interact, far fewer weights.
    "phones_attn": {
        "extractor": PHONES,
        "model": "word_attn",
        "params": {"layer_groups": 41, "projection": 64, "heads": 4, "layers": 1, "dropout": 0.3},
        "train": PHONES_TRAIN,
    },
    # Whisper base's last block over the block-5 frames (experiments/finetune-top.yaml).
    "l5_top_lora": top_recipe("lora"),
    "l5_top_frozen": top_recipe("frozen"),
    # One model seed: what a full 4-fold cv of the trained block costs on 2 cores.
    "l5_top_lora_1seed": top_recipe("lora", seeds=1),
    # 10 s crops (the recording's windows are scored the same length), longer patience.
    "l5_top_lora_10s": top_recipe("lora", TOP_10S, seeds=1),
    "l5_top_full_10s": top_recipe("full", TOP_10S, seeds=1),
    "l5_top_frozen_10s": top_recipe("frozen", TOP_10S, seeds=1),
}


def development(
    cache_dir: str, extractor: dict[str, Any], cached_only: bool
) -> tuple[Dataset, Any]:
    """The study's dataset restricted to development speakers, and their features."""
    archive = load_corpus(ARCHIVE, "saa", regions="seed")
    dataset = make_dataset(archive, "region", min_count=5, seed=0)
    manifest = dataset.manifest[dataset.manifest["split"] != "test"]
    made = make_extractor(extractor["name"], extractor["params"])
    if cached_only:
        cache = FeatureCache(Path(cache_dir), made)
        keep = [cache.path_for(content_hash(p)).exists() for p in manifest["path"]]
        manifest = manifest[keep]
    dataset = dataset.with_manifest(manifest.reset_index(drop=True))
    # The corpus's transcripts, as a study passes them: ``phones`` aligns the passage it is
    # given instead of recognising each recording (another cache entry, and slower).
    features = extract_features(
        list(manifest["path"]), made, jobs=1, cache_dir=cache_dir, texts=archive.texts()
    )
    return dataset, features


def recipe_config(name: str, cache_dir: str, epochs: int | None = None) -> RunConfig:
    recipe = RECIPES[name]
    train = {**STUDY_TRAIN, **recipe.get("train", {})}
    return RunConfig(
        archive=ARCHIVE,
        extractor=recipe["extractor"]["name"],
        extractor_params=recipe["extractor"]["params"],
        model=recipe["model"],
        model_params=recipe["params"],
        train={**train, **({"epochs": epochs} if epochs else {})},
        cache_dir=cache_dir,
    )


def one_fold(name: str, data: tuple[Dataset, Any], cache_dir: str, epochs: int) -> None:
    """The cost of a recipe: its first fold trained for ``epochs``, seconds per epoch."""
    config = recipe_config(name, cache_dir, epochs).model_copy(update={"evaluate_test": True})
    fold = fold_datasets(data[0], 4, 1, config.seed)[0]
    result = run(config, (fold, data[1]))
    seconds = result.epoch_seconds
    held = result.test or {}
    print(
        f"{name}: fold 1 of 4 after {len(seconds)} epochs: balanced accuracy "
        f"{held.get('balanced_accuracy', float('nan')):.3f} on {len(held.get('files', []))} "
        f"held-out speakers; {np.mean(seconds):.1f} s per epoch "
        f"({sum(fold.class_counts('train').values())} training "
        "recordings)",
        flush=True,
    )


def score(name: str, data: tuple[Dataset, Any], cache_dir: str, out: Path) -> dict[str, Any]:
    recipe = RECIPES[name]
    config = recipe_config(name, cache_dir)
    started = time.perf_counter()
    cv = cross_validate(config, data, folds=4, repeats=1, seeds=recipe.get("seeds", 3))
    summary = {
        "name": name,
        "speakers": len({r["speakerid"] for r in cv.oof}),
        "cv_mean": cv.mean,
        "cv_std": cv.std,
        "interval": list(cv.interval),
        "folds": cv.scores,
        "seeds": cv.seeds,
        "seconds": time.perf_counter() - started,
    }
    rows = [{**r, "proba": np.asarray(r["proba"]).tolist()} for r in cv.oof]
    (out / f"{name}.json").write_text(json.dumps({**summary, "oof": rows}))
    return {**summary, "refit_epochs": cv.refit_epochs}


def transfer(
    name: str, data: tuple[Dataset, Any], cache_dir: str, corpus: str, epochs: int
) -> list[str]:
    """``name`` refit on every development speaker for ``epochs`` (its seeds averaged), then
    speechocean762's share called east asian per age group (3 clips a speaker)."""
    config = recipe_config(name, cache_dir)
    members = [
        refit(seeded, data, epochs=epochs, score_test=False).classifier
        for seeded in model_seed_variants(config, RECIPES[name].get("seeds", 3))
    ]
    result = cross_corpus_score(
        EnsembleClassifier(members),
        load_corpus(corpus, "speechocean762"),
        source="region",
        cache_dir=cache_dir,
        max_clips_per_speaker=3,
    )
    return [
        f"{name}: refit {epochs} epochs; speechocean762, {g.group} speakers called {g.label}: "
        f"{g.share:.0%} [{g.low:.0%}-{g.high:.0%}] of {g.speakers}"
        for g in result.groups
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipes", nargs="*", choices=sorted(RECIPES))
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--out", default="accuracy-levers")
    parser.add_argument("--cached-only", action="store_true")
    parser.add_argument("--against", nargs="*", default=[], help="A:B pairs to compare")
    parser.add_argument("--one-fold-epochs", type=int, default=0, help="cost: fold 1 only")
    parser.add_argument("--transfer", help="speechocean762's folder: also score it after a refit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prepared: dict[str, tuple[Dataset, Any]] = {}
    for name in args.recipes:
        extractor = RECIPES[name]["extractor"]
        key = json.dumps(extractor, sort_keys=True)
        if key not in prepared:
            prepared[key] = development(args.cache_dir, extractor, args.cached_only)
        if args.one_fold_epochs:
            one_fold(name, prepared[key], args.cache_dir, args.one_fold_epochs)
            continue
        summary = score(name, prepared[key], args.cache_dir, out)
        low, high = summary["interval"]
        print(
            f"{name}: cv {summary['cv_mean']:.3f} +- {summary['cv_std']:.3f} [{low:.3f}-{high:.3f}]"
            f" over {summary['speakers']} speakers, {summary['seeds']} seed(s), "
            f"{summary['seconds']:.0f} s",
            flush=True,
        )
        if args.transfer:
            lines = transfer(
                name, prepared[key], args.cache_dir, args.transfer, summary["refit_epochs"]
            )
            print("\n".join(lines), flush=True)
    for pair in args.against:
        a, b = pair.split(":")
        rows = [json.loads((out / f"{n}.json").read_text())["oof"] for n in (a, b)]
        diff = paired_oof(*rows)
        print(diff.verdict(a, b), flush=True)


if __name__ == "__main__":
    main()
