"""What every ``headwidget`` subcommand shares: the usage error, argument types, the progress
log and how names are printed.

>>> shown("bad\x1bname")
'bad\\x1bname'
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["UsageError", "log", "option_value", "positive", "shown", "wrap"]


def wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=88)


class UsageError(Exception):
    """A usage error found after parsing (exit code 2)."""


def option_value(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name.strip(), value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def log(line: str) -> None:
    print(f"headwidget: {line}", file=sys.stderr, flush=True)


def shown(text: object) -> str:
    """``text`` safe to print to a terminal: control and other unprintable characters (escape
    sequences, newlines, bidi overrides, lone surrogates) written as in a Python string literal
    (``\\x1b``), and whatever stdout's encoding cannot encode backslash-escaped too."""
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding)
