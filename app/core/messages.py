"""One readable line out of any text: how reasons and errors about hostile files are shown.

Exception texts from parsers and decoders can carry raw bytes of the file (a value of 100 KB, a
NUL, an escape sequence); a reason is printed as one line per file, so it is cut down to
printable characters on one line, at most ``limit`` characters.
"""

from __future__ import annotations

import re

REASON_CHARS = 200  # a skipped file's reason
MESSAGE_CHARS = 400  # an error message, which also names the file

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffd]+")
_SPACES = re.compile(r"\s{2,}")


def one_line(text: object, limit: int = REASON_CHARS) -> str:
    """``text`` on one line of printable characters, cut to ``limit`` characters ("..." ending)."""
    # A Python traceback quoted inside an exception's text (pydicom does) is not for people.
    line = str(text).split("Traceback (most recent call last)")[0].rstrip(" :(\n")
    line = _UNPRINTABLE.sub(" ", line)
    line = "".join(c if c.isprintable() else " " for c in line)
    line = _SPACES.sub(" ", line).strip()
    if len(line) > limit:
        line = line[: limit - 3].rstrip() + "..."
    return line
