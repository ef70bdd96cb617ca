"""What the command line prints, made safe for a terminal.

Records, zone names, URIs in errors and ref texts come from others (a zone's writers, a
server's error body). :func:`echo` prints a line with every control character escaped
(C0 and C1, so no ANSI escape sequence or carriage return reaches the terminal) and the
bidirectional-override characters too (so text cannot be shown reordered).
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

__all__ = ["echo", "printable"]

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """``str(value)`` with control and bidi-override characters escaped (``\\x1b``,
    ``\\n``-as-``\\x0a``, ``\\u202e``), so it prints as one inert line."""
    return _UNSAFE.sub(_escape, str(value))


def echo(value: object = "", *, file: TextIO | None = None) -> None:
    """Print ``value`` as one line, escaped by :func:`printable`."""
    print(printable(value), file=file if file is not None else sys.stdout)
