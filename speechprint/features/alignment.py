"""Forced alignment of the passage's words: CTC Viterbi over the phoneme recogniser's posteriors.

Every speaker reads the same paragraph, so alignment needs no transcript: the states are the
passage's phonemes (``lexicon``) with optional blanks between them and an optional gap (blank or
word boundary) between words. Two things are allowed so that nothing is guessed:

- a word may be **skipped** (a transition over it, at ``SKIP_PENALTY`` nats), and is then marked;
- the path may end after any word: words after it are **not reached** (a cut recording).

A word the path goes through whose frames give its own sounds almost no posterior (a mean log
posterior ratio below ``MIN_WORD_SCORE``) is marked **unsure**. Only ``aligned`` words carry
evidence later. The posteriors come from the ``phoneme_posteriors`` extractor, so they are cached
and computed in parallel like any feature; alignments are cached beside them (small JSON files).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.core.errors import MissingExtraError
from speechprint.core.parallel import parallel_map
from speechprint.features.base import make_extractor
from speechprint.features.cache import FeatureCache, content_hash, resolve_cache_dir
from speechprint.features.extract import extract_features
from speechprint.features.frames import SAMPLES_PER_ENCODER_FRAME, WHISPER_SR
from speechprint.text.lexicon import Word, lexicon_digest, passage_words

VERSION = 4
SKIP_PENALTY = 25.0  # nats: skipping must beat forcing a word's sounds onto the wrong frames
# Stopping early is cheap per unread word: a reading that ends (or a cut file) is common, and
# spoken words left to the gap state cost far more (their sounds' spikes) than this.
END_PENALTY = 2.0
MIN_WORD_SCORE = -6.0  # mean log(p(expected) / p(best)) over the word's frames
# CTC's spike for a word's first sound comes after its acoustic onset (measured on eSpeak speech:
# +80 to +95 ms), so a word starts this much before its first frame, but never before the
# previous word's end.
ONSET_LAG = 0.08
POSTERIOR_STRIDE = 1
ALIGNED, SKIPPED, UNSURE, NOT_REACHED = "aligned", "skipped", "unsure", "not_reached"


@dataclass(frozen=True)
class WordSpan:
    index: int
    start: float  # seconds (NaN unless aligned or unsure)
    end: float
    score: float
    status: str


@dataclass(frozen=True)
class _Graph:
    tokens: np.ndarray  # (S,) emission column per state; -1 = gap (best of blank, boundary)
    word_of: np.ndarray  # (S,) word index, -1 for gaps
    preds: np.ndarray  # (S, K) predecessor states, S = "none"
    penalty: np.ndarray  # (S, K) log weight of that transition (<= 0)
    skipped: np.ndarray  # (S, K) index of the word skipped on that transition, -1 = none
    starts: np.ndarray  # (S,) log start weight
    ends: np.ndarray  # (S,) log weight of ending the path there (-inf: cannot)
    last_word: np.ndarray  # (S,) last word completed when the path ends there


def build_graph(words: list[Word], vocab: dict[str, int], blank: int) -> _Graph:
    """The CTC state graph: gap, word 0 (tokens and blanks), gap, word 1, ..., gap."""
    tokens, word_of, first, last = [-1], [-1], [], []
    for w, word in enumerate(words):
        ids = [vocab[p] for p in word.phonemes]
        first.append(len(tokens))
        for k, token in enumerate(ids):
            if k:
                tokens.append(blank)
                word_of.append(w)
            tokens.append(token)
            word_of.append(w)
        last.append(len(tokens) - 1)
        tokens.append(-1)
        word_of.append(-1)
    n = len(tokens)
    preds = [[s] for s in range(n)]
    pen = [[0.0] for _ in range(n)]
    skip = [[-1] for _ in range(n)]

    def link(to: int, src: int, cost: float = 0.0, skipped: int = -1) -> None:
        preds[to].append(src)
        pen[to].append(cost)
        skip[to].append(skipped)

    for s in range(1, n):
        if word_of[s] >= 0 and s not in first:
            link(s, s - 1)  # token <- blank, blank <- token
            if tokens[s] != blank and tokens[s - 2] != tokens[s]:
                link(s, s - 2)  # token <- token (no blank needed between different sounds)
    for w in range(len(words)):
        link(last[w] + 1, last[w])  # gap after word w
        if w == 0:
            link(first[0], 0)  # leading silence
            continue
        link(first[w], last[w - 1] + 1)  # from the gap
        if tokens[first[w]] != tokens[last[w - 1]]:
            link(first[w], last[w - 1])  # straight on
        if w >= 2:  # word w - 1 skipped
            link(first[w], last[w - 2] + 1, -SKIP_PENALTY, w - 1)
            link(first[w], last[w - 2], -SKIP_PENALTY, w - 1)
    width = max(len(p) for p in preds)
    pad = lambda rows, fill: np.array([r + [fill] * (width - len(r)) for r in rows])  # noqa: E731
    starts = np.full(n, -np.inf)
    starts[0] = starts[first[0]] = 0.0
    if len(words) > 1:
        starts[first[1]] = -SKIP_PENALTY  # the first word skipped
    last_word = np.maximum.accumulate(np.where(np.isin(np.arange(n), last), word_of, -1))
    ends = np.full(n, -np.inf)  # ending after word w leaves the rest unread
    done = [e for e in last] + [e + 1 for e in last]
    ends[done] = -END_PENALTY * (len(words) - 1 - last_word[done])
    return _Graph(
        np.array(tokens),
        np.array(word_of),
        pad(preds, n),
        pad(pen, 0.0),
        pad(skip, -1),
        starts,
        ends,
        last_word,
    )


def viterbi(
    log_probs: np.ndarray, graph: _Graph, gap_tokens: list[int]
) -> tuple[np.ndarray, set[int]]:
    """Best state per frame, and the words skipped on the way."""
    gap = log_probs[:, gap_tokens].max(axis=1)
    emit = np.where(
        graph.tokens[None, :] >= 0, log_probs[:, np.maximum(graph.tokens, 0)], gap[:, None]
    )
    n_frames, n_states = emit.shape
    back = np.zeros((n_frames, n_states), dtype=np.int8)
    delta = graph.starts + emit[0]
    for t in range(1, n_frames):
        scores = np.append(delta, -np.inf)[graph.preds] + graph.penalty
        back[t] = np.argmax(scores, axis=1)
        delta = scores[np.arange(n_states), back[t]] + emit[t]
    state = int(np.argmax(delta + graph.ends))
    path = np.empty(n_frames, dtype=int)
    skipped: set[int] = set()
    for t in range(n_frames - 1, -1, -1):
        path[t] = state
        if t:
            k = back[t, state]
            if graph.skipped[state, k] >= 0:
                skipped.add(int(graph.skipped[state, k]))
            state = int(graph.preds[state, k])
    return path, skipped


def align_posteriors(
    log_probs: np.ndarray,
    frame_seconds: float,
    words: list[Word],
    vocab: dict[str, int],
    blank: int,
    gap_tokens: list[int],
) -> list[WordSpan]:
    """Word spans for one recording's ``(frames, vocab)`` log-posteriors."""
    graph = build_graph(words, vocab, blank)
    path, skipped = viterbi(log_probs, graph, gap_tokens)
    return spans_from_path(log_probs, frame_seconds, words, graph, path, skipped, blank)


def spans_from_path(
    log_probs: np.ndarray,
    frame_seconds: float,
    words: list[Word],
    graph: _Graph,
    path: np.ndarray,
    skipped: set[int],
    blank: int,
) -> list[WordSpan]:
    """Word spans of a Viterbi ``path`` through ``graph`` (``WordSpan.index`` is the position
    in ``words``)."""
    reached = int(graph.last_word[path[-1]])
    best = log_probs.max(axis=1)
    spans, previous_end = [], 0.0
    for w in range(len(words)):
        frames = np.flatnonzero(graph.word_of[path] == w)
        if w in skipped or w > reached or len(frames) == 0:
            status = SKIPPED if w <= reached else NOT_REACHED
            spans.append(WordSpan(w, float("nan"), float("nan"), float("nan"), status))
            continue
        # Token frames only: blanks inside a word say nothing about whether it was said.
        own = graph.tokens[path[frames]]
        sounds = own != blank
        frames_, own_ = (frames[sounds], own[sounds]) if sounds.any() else (frames, own)
        score = float(np.mean(log_probs[frames_, own_] - best[frames_]))
        status = ALIGNED if score >= MIN_WORD_SCORE else UNSURE
        start = max(previous_end, frames[0] * frame_seconds - ONSET_LAG)
        previous_end = (frames[-1] + 1) * frame_seconds
        spans.append(WordSpan(w, start, previous_end, score, status))
    return spans


# -- many recordings: posteriors (a cached feature), then cached alignments ---------------------
@functools.cache
def recogniser_vocab() -> tuple[dict[str, int], int, list[int]]:
    """The recogniser's output columns by token, its blank, and the tokens a gap may emit."""
    try:
        from hama import Vocabulary
    except ImportError as error:
        raise MissingExtraError("word alignment needs hama", name="hama") from error
    # The recogniser's output columns, as hama.ASRModel builds them.
    tokens = [*Vocabulary.load(None).decoder, "<wb>", "<blank>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    return vocab, vocab["<blank>"], [vocab["<blank>"], vocab["<wb>"], vocab[" "]]


def posterior_extractor() -> Any:
    """The ``phoneme_posteriors`` words are aligned on: 50 frames/s, since averaging two frames'
    log-posteriors (the feature's default) blurs CTC's one-frame spikes, and measured on eSpeak
    speech more words were then skipped."""
    return make_extractor("phoneme_posteriors", {"frame_stride": POSTERIOR_STRIDE})


def align_words(log_probs: np.ndarray, words: list[Word] | None = None) -> list[WordSpan]:
    """``words`` (default: the passage's) in one recording's ``posterior_extractor()`` output;
    any text's words and their phonemes: ``phone_alignment.align_text``."""
    vocab, blank, gaps = recogniser_vocab()
    frame_seconds = POSTERIOR_STRIDE * SAMPLES_PER_ENCODER_FRAME / WHISPER_SR
    words = passage_words() if words is None else words
    return align_posteriors(log_probs, frame_seconds, words, vocab, blank, gaps)


def _align_chunk(items: Sequence[tuple[str, str, str]]) -> list[list[dict[str, Any]]]:
    """Align ``(audio, posterior .npy, cache file)`` items; runs in a worker."""
    out = []
    for _, posteriors, target in items:
        rows = [asdict(s) for s in align_words(np.load(posteriors))]
        _write_json(Path(target), rows)
        out.append(rows)
    return out


def align_files(
    paths: list[str],
    *,
    jobs: int | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> dict[str, list[WordSpan]]:
    """``{path: spans}`` for every decodable recording (posteriors and alignments cached)."""
    extractor = posterior_extractor()
    root = resolve_cache_dir(cache_dir)
    features = extract_features(paths, extractor, jobs=jobs, cache_dir=root, progress=progress)
    cache = FeatureCache(root, extractor)
    folder = root / f"alignments.v{VERSION}-{lexicon_digest()}-{extractor.config_hash()}"
    found: dict[str, list[dict[str, Any]]] = {}
    todo: list[tuple[str, str, str]] = []
    for path in features.features:
        key = content_hash(path)
        target = folder / f"{key}.json"
        if target.exists():
            found[path] = json.loads(target.read_text())
        else:
            todo.append((path, str(cache.path_for(key)), str(target)))
    rows = parallel_map(_align_chunk, todo, jobs=jobs, label="aligning words", progress=progress)
    found.update({item[0]: r for item, r in zip(todo, rows)})
    return {p: [WordSpan(**row) for row in found[p]] for p in features.features}


def _write_json(target: Path, rows: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, target)
