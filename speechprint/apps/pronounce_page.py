"""The learner's page of ``speechprint pronounce``: self-contained HTML (figure and audio clips
embedded as base64), opened from disk without a server."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.features.slots import DELETED
from speechprint.findings import plots

PAD = 0.08  # seconds of audio kept either side of a word's clip
TOP_WORDS = 10
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
img { max-width: 100%; display: block; margin: 1em 0; }
.summary { background: #f6f6f2; padding: .8em 1em; border-left: 4px solid #8a6; }
.passage { line-height: 2.2; } .passage .w { padding: 1px 3px; border-radius: 3px; }
.na { color: #999; text-decoration: line-through; } .meta { color: #666; font-size: .9em; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; border-bottom: 1px solid #ddd; }
audio { height: 28px; vertical-align: middle; }
"""


def write_page(result: Any, wave: np.ndarray, rate: int, out: Path) -> Path:
    """``result`` is ``pronounce.Pronounced``; ``wave`` the recording at ``rate``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    marked = [w for w in result.words if w.flagged]
    marked.sort(key=lambda w: (-w.flagged, w.gop))
    body = [
        "<h1>How this recording sounds</h1>",
        f'<p class="meta">{html.escape(str(result.recording))}; '
        f"{result.aligned_share:.0%} of the text's words aligned; sounds judged against "
        f"{html.escape(result.reference)}.</p>",
        f'<p class="summary">{html.escape(_summary(result, marked))}</p>',
        f"<p>The whole recording: {_audio(wave, rate)}</p>",
        _regions(result),
        "<h2>Words and sounds that differ most from native readers</h2>",
        _words_table(marked[:TOP_WORDS], wave, rate),
        "<h2>The text, each sound shaded by how rarely native readers say it so</h2>",
        _passage(result.words),
        _figure(result.words, wave, rate),
    ]
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>SpeechPrint pronunciation</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
    out.write_text(page, encoding="utf-8")
    return out


def _summary(result: Any, marked: list) -> str:
    slots = [s for w in result.words for s in w.slots if s.measured]
    flagged = sum(w.flagged for w in result.words)
    if not slots:
        return "No word of the text could be aligned in this recording, so no sound is judged."
    named = ", ".join(f"{w.word.text} ({_changes(w)})" for w in marked[:3])
    return (
        f"{flagged} of {len(slots)} sounds heard were said otherwise than most native readers "
        f"say them{': most in ' + named if named else ''}."
    )


def _changes(word: Any) -> str:
    return "; ".join(
        f"/{s.expected}/ heard as {'nothing' if s.heard == DELETED else '[' + s.heard + ']'}"
        for s, f in zip(word.slots, word.flags, strict=True)
        if f
    )


def _regions(result: Any) -> str:
    if not result.regions:
        note = "no model given (--model)" if result.model is None else "the model gave no answer"
        return f'<p class="meta">Regions: {html.escape(note)}; the sounds below need no model.</p>'
    rows = "".join(
        f"<tr><td>{html.escape(r['label'])}</td><td>{r['probability']:.0%}</td></tr>"
        for r in result.regions
    )
    return (
        f"<h2>Where the model ({html.escape(str(result.model))}) hears this speaker from</h2>"
        f"<table><tr><th>region</th><th>probability</th></tr>{rows}</table>"
    )


def _words_table(words: list, wave: np.ndarray, rate: int) -> str:
    if not words:
        return "<p>No sound differs from what native readers say.</p>"
    rows = []
    for w in words:
        expected = " ".join(s.expected for s in w.slots)
        heard = " ".join(s.heard or "?" for s in w.slots)
        cells = [
            html.escape(w.word.text),
            f"/{html.escape(expected)}/",
            f"[{html.escape(heard)}]",
            html.escape(_changes(w)),
            _audio(wave, rate, w.start, w.end),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("word", "expected", "heard", "differs", "listen"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _passage(words: list) -> str:
    parts = []
    for w in words:
        if not any(s.measured for s in w.slots):
            parts.append(f'<span class="w na" title="{w.status}">{html.escape(w.word.text)}</span>')
            continue
        rarity = max(
            (1.0 - n for s, n in zip(w.slots, w.native, strict=True) if s.measured), default=0
        )
        alpha = 0.75 * rarity if w.flagged else 0.0
        tip = f"/{' '.join(s.expected for s in w.slots)}/ heard [{' '.join(s.heard for s in w.slots)}]"
        parts.append(
            f'<span class="w" style="background: rgba(220,40,40,{alpha:.2f})" '
            f'title="{html.escape(tip)}">{html.escape(w.word.text)}</span>'
        )
    return f'<p class="passage">{" ".join(parts)}</p>'


def _figure(words: list, wave: np.ndarray, rate: int) -> str:
    """The waveform's envelope with each aligned word's span, red by its marked sounds."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(11, 2.6))
    hop = max(1, rate // 100)
    envelope = np.abs(wave[: len(wave) // hop * hop]).reshape(-1, hop).max(axis=1)
    times = np.arange(len(envelope)) * hop / rate
    ax.fill_between(times, -envelope, envelope, color="#888", linewidth=0)
    for w in words:
        if not np.isfinite(w.start):
            continue
        share = w.flagged / max(1, len(w.slots))
        ax.axvspan(w.start, w.end, color=(0.86, 0.16, 0.16, 0.15 + 0.6 * share), linewidth=0)
        ax.text(
            (w.start + w.end) / 2,
            envelope.max() * 1.05,
            w.word.text,
            fontsize=6,
            rotation=60,
            ha="center",
            va="bottom",
        )
    ax.set_xlabel("seconds")
    ax.set_yticks([])
    ax.set_title("Words in time (red: sounds that differ from native readers)", fontsize=9, pad=38)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="words in time" src="data:image/png;base64,{data}">'


def _audio(wave: np.ndarray, rate: int, start: float = 0.0, end: float | None = None) -> str:
    """An ``<audio>`` element with the clip embedded as a 16-bit WAV."""
    import soundfile

    if end is not None and not (np.isfinite(start) and np.isfinite(end)):
        return ""
    lo = max(0, int((start - PAD) * rate)) if end is not None else 0
    hi = min(len(wave), int((end + PAD) * rate)) if end is not None else len(wave)
    buffer = io.BytesIO()
    soundfile.write(buffer, wave[lo:hi], rate, format="WAV", subtype="PCM_16")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<audio controls preload="auto" src="data:audio/wav;base64,{data}"></audio>'
