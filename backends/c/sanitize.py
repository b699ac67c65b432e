"""The one gate between model-supplied text and generated C.

Tensor, node and file names come from the model file and may hold anything: ``*/``,
backslashes (a backslash before a newline splices lines, even inside a comment),
newlines, trigraphs (``??/`` is a backslash under ``-std=c99``), quotes, non-ASCII.
Every such string that reaches a ``.c`` / ``.h`` file goes through one of these
functions, which keep a small safe character set and replace everything else:

* ``comment(text)``: for the inside of a ``/* ... */`` comment. Keeps ASCII letters,
  digits, space and ``_.,:;()[]{}<>=+-#%~^|&@*/``; anything else (``\\``, ``?``,
  quotes, control characters, non-ASCII) becomes ``_``, and a space is put between
  any two adjacent ``*`` / ``/``, so no comment can be closed (``*/``) or opened
  (``/*``); without ``\\`` and newlines no line can be spliced, without ``?`` no
  trigraph can form. PyTorch's ``/layer/Conv`` names stay readable.
* ``identifier(text)``: ASCII letters, digits and ``_``; anything else becomes ``_``;
  a leading digit (or an empty result) gets a ``t_`` prefix.

The emitters never put model strings into string literals; if they ever do, the text
must first pass ``identifier`` (which leaves nothing to escape).
"""

from __future__ import annotations

import re

_UNSAFE_IN_COMMENT = re.compile(r"[^A-Za-z0-9 _.,:;()\[\]{}<>=+\-#%~^|&@*/]")
_COMMENT_DELIMITER = re.compile(r"(?<=[*/])(?=[*/])")  # between two of '*' and '/'

_UNSAFE_IN_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")
MAX_COMMENT = 160  # characters of one model string kept in a comment


def comment(text: str, limit: int | None = MAX_COMMENT) -> str:
    """``text`` made inert inside a C block comment (see the module docstring).

    A model string longer than ``limit`` characters is cut (``...`` marks the cut);
    ``limit=None`` keeps the length (for whole comment lines of our own making).
    """
    cleaned = _COMMENT_DELIMITER.sub(" ", _UNSAFE_IN_COMMENT.sub("_", str(text)))
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[:limit - 3] + "..."
    return cleaned


def identifier(text: str) -> str:
    """``text`` as a C identifier fragment: ``[A-Za-z0-9_]`` only, not starting with a digit."""
    cleaned = _UNSAFE_IN_IDENTIFIER.sub("_", str(text))
    return cleaned if cleaned and not cleaned[0].isdigit() else f"t_{cleaned}"
