"""Which accents sound alike: a tree from the symmetrised out-of-fold confusion, a map of speakers.

Two classes are close when the model confuses them both ways: similarity ``(R_ij + R_ji) / 2``
over the row-normalised confusion ``R``, distance ``1 - similarity / max``, average linkage. The
speaker map is t-SNE over the model's features pooled per recording (mean + std, standardised).
For the native-language target, whether the tree groups languages by family is measured: the
mean tree height joining two languages of the same family against two of different families, with
a permutation p-value (family labels shuffled).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.features import pool_statistics
from speechprint.findings.page import Section
from speechprint.findings.plots import pyplot, save

FAMILIES = {
    "spanish": "Romance",
    "french": "Romance",
    "italian": "Romance",
    "portuguese": "Romance",
    "romanian": "Romance",
    "catalan": "Romance",
    "russian": "Slavic",
    "polish": "Slavic",
    "czech": "Slavic",
    "serbian": "Slavic",
    "croatian": "Slavic",
    "bulgarian": "Slavic",
    "ukrainian": "Slavic",
    "macedonian": "Slavic",
    "slovak": "Slavic",
    "bosnian": "Slavic",
    "german": "Germanic",
    "dutch": "Germanic",
    "swedish": "Germanic",
    "norwegian": "Germanic",
    "danish": "Germanic",
    "english": "Germanic",
    "icelandic": "Germanic",
    "mandarin": "Sinitic",
    "cantonese": "Sinitic",
    "arabic": "Semitic",
    "hebrew": "Semitic",
    "amharic": "Semitic",
    "hindi": "Indo-Aryan",
    "bengali": "Indo-Aryan",
    "urdu": "Indo-Aryan",
    "punjabi": "Indo-Aryan",
    "gujarati": "Indo-Aryan",
    "nepali": "Indo-Aryan",
    "marathi": "Indo-Aryan",
    "tamil": "Dravidian",
    "telugu": "Dravidian",
    "kannada": "Dravidian",
    "malayalam": "Dravidian",
    "turkish": "Turkic",
    "uzbek": "Turkic",
    "kazakh": "Turkic",
    "azerbaijani": "Turkic",
    "farsi": "Iranian",
    "kurdish": "Iranian",
    "pashto": "Iranian",
    "tagalog": "Austronesian",
    "indonesian": "Austronesian",
    "malay": "Austronesian",
    "yoruba": "Niger-Congo",
    "swahili": "Niger-Congo",
    "igbo": "Niger-Congo",
}


def similarity_tree(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(linkage matrix, distance matrix) from a confusion matrix (rows: true class)."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    recall = confusion / np.clip(confusion.sum(axis=1, keepdims=True), 1, None)
    sim = (recall + recall.T) / 2
    np.fill_diagonal(sim, 0.0)
    dist = 1.0 - sim / (sim.max() or 1.0)
    np.fill_diagonal(dist, 0.0)
    return linkage(squareform(dist, checks=False), method="average"), dist


def family_test(
    tree: np.ndarray, labels: list[str], *, n_perm: int = 2000, seed: int = 0
) -> dict[str, Any] | None:
    """Same-family vs different-family mean cophenetic height, and a permutation p-value."""
    from scipy.cluster.hierarchy import cophenet
    from scipy.spatial.distance import squareform

    known = [i for i, label in enumerate(labels) if label in FAMILIES]
    families = np.array([FAMILIES[labels[i]] for i in known])
    if len(known) < 4 or len(set(families)) < 2 or len(families) == len(set(families)):
        return None
    heights = squareform(cophenet(tree))[np.ix_(known, known)]
    upper = np.triu_indices(len(known), 1)

    def contrast(fam: np.ndarray) -> float:
        same = (fam[:, None] == fam[None, :])[upper]
        return float(heights[upper][~same].mean() - heights[upper][same].mean())

    observed = contrast(families)
    rng = np.random.default_rng(seed)
    null = np.array([contrast(rng.permutation(families)) for _ in range(n_perm)])
    same = (families[:, None] == families[None, :])[upper]
    return {
        "languages": len(known),
        "families": len(set(families)),
        "same_family_height": float(heights[upper][same].mean()),
        "different_family_height": float(heights[upper][~same].mean()),
        "p_value": float((1 + np.sum(null >= observed)) / (n_perm + 1)),
    }


def speaker_map(subject: Any) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.stack([pool_statistics(subject.features.features[p]) for p in subject.frame["path"]])
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    x = PCA(n_components=min(50, *x.shape), random_state=0).fit_transform(x)
    perplexity = float(min(30, max(2, (len(x) - 1) / 3)))
    return TSNE(perplexity=perplexity, init="pca", random_state=0).fit_transform(x)


def section(subject: Any, out: Path) -> Section:
    from scipy.cluster.hierarchy import dendrogram

    labels = list(subject.labels)
    y, pred = subject.frame["y"].to_numpy(), subject.predicted
    confusion = np.zeros((len(labels), len(labels)))
    np.add.at(confusion, (y, pred), 1)
    tree, dist = similarity_tree(confusion)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(labels) + 2))
    dendrogram(tree, labels=labels, orientation="left", ax=ax, color_threshold=0)
    ax.set(title="Classes joined by how often the model confuses them", xlabel="distance")
    tree_png = save(fig, out / "similarity_tree.png")
    points = speaker_map(subject)
    fig, ax = plt.subplots(figsize=(8, 6.5))
    colours = plt.get_cmap("tab20")
    for k, label in enumerate(labels):
        members = y == k
        ax.scatter(*points[members].T, s=9, color=colours(k % 20), label=label)
    ax.legend(fontsize=6, markerscale=1.5, loc="best", ncol=2)
    ax.set(
        title="Speakers (t-SNE of pooled features), coloured by true class", xticks=[], yticks=[]
    )
    map_png = save(fig, out / "speaker_map.png")
    families = family_test(tree, labels) if subject.config.target == "native_language" else None
    pairs = sorted(
        (dist[i, j], labels[i], labels[j])
        for i in range(len(labels))
        for j in range(i + 1, len(labels))
    )[:3]
    data = out / "similarity.json"
    data.write_text(
        json.dumps(
            {"labels": labels, "distance": dist.tolist(), "families": families, "closest": pairs},
            indent=2,
        )
    )
    summary = (
        "The model confuses these most, both ways: "
        + "; ".join(f"{a} and {b} (distance {d:.2f})" for d, a, b in pairs)
        + ". "
    )
    if families:
        verdict = "does" if families["p_value"] < 0.05 else "does not measurably"
        summary += (
            f"The tree {verdict} group languages by family: two languages of one family "
            f"join at mean height {families['same_family_height']:.2f} against "
            f"{families['different_family_height']:.2f} across families "
            f"({families['languages']} languages in {families['families']} families, "
            f"permutation p = {families['p_value']:.3f})."
        )
    else:
        summary += (
            "Language families are tested with --target native_language (the classes "
            "here are not languages, or too few have a known family)."
        )
    return Section("similarity", "Which accents sound alike?", summary, [tree_png, map_png], [data])
