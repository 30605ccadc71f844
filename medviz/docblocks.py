"""Generated blocks in Markdown files: figures are written by commands, never by hand.

A block is the text between a begin and an end marker (HTML comments, invisible
on GitHub). The README's shipped-models table (``python -m tools.make_models
--readme``), its explanation figures (``python -m bench.explanations_readme
--readme``) and its "Speed" section (``python -m bench``) are such blocks, each
kept in step with its source by a test.
"""

from __future__ import annotations

from pathlib import Path

from medviz.store import atomic_write_text


def block_body(text: str, begin: str, end: str) -> str | None:
    """The text between ``begin`` and ``end`` (stripped), or ``None`` without both markers."""
    if begin not in text or end not in text.split(begin, 1)[1]:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def replace_block(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with the block between the markers replaced by ``body``.

    Raises:
        ValueError: ``text`` lacks ``begin`` or an ``end`` after it.
    """
    if block_body(text, begin, end) is None:
        raise ValueError(f"no {begin!r} … {end!r} block in the text")
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    return f"{head}{begin}\n{body.strip()}\n{end}{tail}"


def update_file(path: Path, begin: str, end: str, body: str) -> bool:
    """Rewrite the block in the file ``path`` (atomically); ``True`` when it changed.

    Raises:
        ValueError: The file has no such block.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        new = replace_block(text, begin, end, body)
    except ValueError:
        raise ValueError(f"{path} has no {begin!r} … {end!r} block") from None
    if new != text:
        atomic_write_text(Path(path), new)
    return new != text
