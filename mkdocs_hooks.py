"""MkDocs hooks: the repository's README.md is the site's home page.

The README lives at the repository root, outside ``docs/``, and links to ``docs/USAGE.md`` so that
it reads well on a forge; on the site it is ``index.md`` beside the pages, so those links lose their
``docs/`` prefix, and the pages' links to ``../README.md`` point at ``index.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

README = "README.md"


def on_files(files: Files, config: Any) -> Files:
    readme = Path(config.config_file_path).parent / README
    files.append(File.generated(config, "index.md", abs_src_path=str(readme)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if page.file.src_uri == "index.md":
        return re.sub(r"\]\(docs/", "](", markdown)
    return re.sub(r"\]\(\.\./README\.md", "](index.md", markdown)
