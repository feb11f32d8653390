"""Sections of ``docs/benchmarks.md`` written by the benchmark scripts that run apart from
``make bench``'s peer comparison (the Postgres tier, the caching proxy, the transport).

Each script replaces its own block, between ``<!-- section:NAME -->`` and
``<!-- /section:NAME -->``, and leaves the rest of the page as it is; `peers/report.py`
carries every block over when it regenerates the page, so one run never erases another's
figures. Each block says when and how it was measured.

>>> page = "# B\\n"
>>> page = replace_section(page, "x", "## X\\n1\\n")
>>> replace_section(page, "x", "## X\\n2\\n").count("## X")
1
>>> kept_sections(page)
['<!-- section:x -->\\n## X\\n1\\n<!-- /section:x -->\\n']
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

_BLOCK = re.compile(
    r"<!-- section:(?P<name>[\w-]+) -->\n.*?<!-- /section:(?P=name) -->\n", re.DOTALL
)


def _block(name: str, body: str) -> str:
    return f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"


def replace_section(page: str, name: str, body: str) -> str:
    """`page` with the block `name` set to `body` (appended when it is not there yet)."""
    block = _block(name, body)
    pattern = re.compile(
        rf"<!-- section:{re.escape(name)} -->\n.*?"
        rf"<!-- /section:{re.escape(name)} -->\n",
        re.DOTALL,
    )
    if pattern.search(page):
        return pattern.sub(lambda _m: block, page, count=1)
    return page.rstrip("\n") + "\n\n" + block


def kept_sections(page: str) -> list[str]:
    """Every block in `page`, in order, as it stands."""
    return [m.group(0) for m in _BLOCK.finditer(page)]


def write_section(name: str, title: str, body: str, command: str, path: Path = DOC) -> None:
    """Replace block `name` of the page at `path` with `title`, a line saying when and with
    which `command` it was measured, and `body` (markdown)."""
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"## {title}\n\nMeasured on {when} with `{command}`, on the same kind of shared "
        f"2-core machine; ratios within one run are what count.\n\n{body.strip()}\n"
    )
    page = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(replace_section(page, name, text), encoding="utf-8")
