"""Errors and warnings users see.

Every error a user can cause derives from ``MicrolithError``; its message is one
line naming the file, node or tensor at fault. The CLI prints ``error: <message>``
and exits with status 2 for these, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


class MicrolithError(Exception):
    """A user-facing error with a one-line message; ``context`` may hold more (IR lines).

    ``node`` (optional) is the IR node at fault: the pass manager then fills ``context``
    with the IR around it, a caret under it.
    """

    def __init__(self, message: str, node: object | None = None) -> None:
        super().__init__(" ".join(message.split("\n")))
        self.context = ""
        self.node = node


class FrontendError(MicrolithError):
    """The input model cannot be read or is outside what we support."""


class PassError(MicrolithError):
    """A pass failed; the message names the pass, the node and the passes before it."""


class BackendError(MicrolithError):
    """The graph cannot be emitted for the chosen target."""


class UsageError(MicrolithError):
    """Bad command-line or API arguments."""


class InternalError(Exception):
    """A bug in microlith (not the user's input): reported as one, exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split("\n")))
        self.context = ""


WarningSink = Callable[[str], None]


def stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


LIST_LIMIT = 10


def capped(items: Sequence[str], sep: str = ", ", limit: int = LIST_LIMIT) -> str:
    """``items`` joined, the first ``limit`` only and then "... N more" (error lines stay
    readable for a model with thousands of nodes)."""
    if len(items) <= limit:
        return sep.join(items)
    return sep.join(items[:limit]) + f"{sep}... {len(items) - limit} more"
