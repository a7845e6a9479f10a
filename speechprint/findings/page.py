"""One self-contained page: every section's summary, figures (embedded as base64) and data links."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
img { max-width: 100%; display: block; margin: 1em 0; }
.summary { background: #f6f6f2; padding: .8em 1em; border-left: 4px solid #8a6; }
.speaker { line-height: 1.9; } .speaker span { padding: 1px 2px; border-radius: 3px; }
.na { color: #999; text-decoration: line-through; } .meta { color: #666; font-size: .9em; }
"""


@dataclass
class Section:
    key: str  # file stem of its outputs: "words", "onset", ...
    title: str
    summary: str  # plain language, with the figures
    images: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)  # CSV / JSON beside the page
    html: str = ""  # extra markup (the per-speaker passages)
    seconds: float = 0.0


def write_page(sections: list[Section], out: Path, *, title: str, subtitle: str) -> Path:
    """``out`` (findings.html): opens from disk, no server, nothing fetched."""
    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="meta">{html.escape(subtitle)}</p>']
    for section in sections:
        body.append(f'<section id="{section.key}"><h2>{html.escape(section.title)}</h2>')
        body.append(f'<p class="summary">{html.escape(section.summary)}</p>')
        for image in section.images:
            data = base64.b64encode(image.read_bytes()).decode()
            body.append(f'<img alt="{html.escape(image.stem)}" src="data:image/png;base64,{data}">')
        body.append(section.html)
        if section.data:
            links = ", ".join(f'<a href="{p.name}">{p.name}</a>' for p in section.data)
            body.append(f'<p class="meta">numbers: {links} ({section.seconds:.1f} s)</p>')
        body.append("</section>")
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
    out.write_text(page, encoding="utf-8")
    return out
