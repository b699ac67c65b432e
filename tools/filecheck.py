"""A small FileCheck-style checker for IR text (LLVM FileCheck's core directives).

Check lines are read from a string; anything before ``CHECK`` on the line (``//``,
``#``, spaces) is ignored, and lines without a directive are skipped::

    CHECK:      pattern   the pattern occurs at or after the end of the previous match
    CHECK-NEXT: pattern   ... on the line right after the previous match's line
    CHECK-SAME: pattern   ... on the same line as the previous match, after it
    CHECK-NOT:  pattern   the pattern does not occur between the previous match and
                          the next positive match (or the end of the text)

A pattern is a substring; ``{{regex}}`` embeds a Python regular expression, and a
run of spaces in the literal part matches any run of spaces or tabs. A failing
directive raises ``CheckError`` (an ``AssertionError``) quoting the check line and
the text around where the search happened.

Usage from tests: ``filecheck(print_graph(graph), checks)``. From a shell::

    python tools/filecheck.py CHECKS_FILE < input.txt
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

DIRECTIVE = re.compile(r"\bCHECK(-NEXT|-SAME|-NOT)?:(.*)$")
CONTEXT_LINES = 3


class CheckError(AssertionError):
    """A check did not hold; the message quotes the check and the nearby input."""


@dataclass(frozen=True)
class Check:
    """One directive: kind ("CHECK", "CHECK-NEXT", ...), the pattern and where it was written."""

    kind: str
    pattern: str
    regex: re.Pattern[str]
    line: int

    def describe(self) -> str:
        return f"{self.kind}: {self.pattern} (check line {self.line})"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Literal text with ``{{regex}}`` pieces; spaces match any horizontal whitespace run.

    A regex piece ends at the first ``}}`` outside its own braces, so quantifiers
    like ``{{[0-9a-f]{8}}}`` work.
    """
    parts: list[str] = []
    pos = 0
    while (start := pattern.find("{{", pos)) >= 0:
        depth, end = 0, start + 2
        while end < len(pattern) and not (depth == 0 and pattern.startswith("}}", end)):
            depth += {"{": 1, "}": -1}.get(pattern[end], 0)
            end += 1
        if end >= len(pattern):
            raise ValueError(f"unterminated {{{{regex}}}} in {pattern!r}")
        parts.append(_literal(pattern[pos:start]))
        parts.append(f"(?:{pattern[start + 2:end]})")
        pos = end + 2
    parts.append(_literal(pattern[pos:]))
    return re.compile("".join(parts))


def _literal(text: str) -> str:
    return "[ \t]+".join(re.escape(chunk) for chunk in re.split(r"[ \t]+", text))


def parse_checks(checks: str) -> list[Check]:
    """The directives in ``checks``, in order; raises ValueError if there are none."""
    out: list[Check] = []
    for number, raw in enumerate(checks.splitlines(), start=1):
        match = DIRECTIVE.search(raw)
        if match is None:
            continue
        kind = "CHECK" + (match.group(1) or "")
        pattern = match.group(2).strip()
        if not pattern:
            raise ValueError(f"check line {number}: {kind} with an empty pattern")
        out.append(Check(kind, pattern, compile_pattern(pattern), number))
    if not out:
        raise ValueError("no CHECK directives found")
    first = next((c for c in out if c.kind != "CHECK-NOT"), None)
    if first is not None and first.kind in ("CHECK-NEXT", "CHECK-SAME"):
        raise ValueError(f"check line {first.line}: {first.kind} needs a previous match")
    return out


def _excerpt(lines: list[str], at: int, note: str) -> str:
    """Input lines around index ``at`` (1-based numbers), the line ``at`` marked."""
    lo, hi = max(at - CONTEXT_LINES, 0), min(at + CONTEXT_LINES + 1, len(lines))
    shown = [f"{'>' if i == at else ' '} {i + 1:4d} | {lines[i]}" for i in range(lo, hi)]
    if not shown:
        shown = ["  (empty input)"]
    return f"{note}\n" + "\n".join(shown)


def filecheck(text: str, checks: str) -> None:
    """Match ``checks`` against ``text``; raise ``CheckError`` at the first failure."""
    lines = text.splitlines()
    line, col = 0, 0  # search position: the end of the previous positive match
    pending_not: list[Check] = []

    def fail(check: Check, at: int, why: str) -> CheckError:
        return CheckError(f"{check.describe()}\n{why}\n" + _excerpt(
            lines, min(at, max(len(lines) - 1, 0)), "input near here:"))

    def check_nots(end_line: int, end_col: int) -> None:
        for neg in pending_not:
            for index in range(line, min(end_line, len(lines) - 1) + 1):
                start = col if index == line else 0
                stop = end_col if index == end_line else len(lines[index])
                if neg.regex.search(lines[index], start, max(stop, start)):
                    raise fail(neg, index, f"excluded pattern found on input line {index + 1}")
        pending_not.clear()

    for check in parse_checks(checks):
        if check.kind == "CHECK-NOT":
            pending_not.append(check)
            continue
        if check.kind == "CHECK":
            found = None
            for index in range(line, len(lines)):
                hit = check.regex.search(lines[index], col if index == line else 0)
                if hit:
                    found = (index, hit)
                    break
            if found is None:
                raise fail(check, line, f"no match from input line {line + 1} to the end")
        elif check.kind == "CHECK-NEXT":
            index = line + 1
            hit = check.regex.search(lines[index]) if index < len(lines) else None
            if hit is None:
                raise fail(check, index, f"input line {index + 1} does not match")
            found = (index, hit)
        else:  # CHECK-SAME
            hit = check.regex.search(lines[line], col) if line < len(lines) else None
            if hit is None:
                raise fail(check, line, f"the rest of input line {line + 1} does not match")
            found = (line, hit)
        check_nots(found[0], found[1].start())
        line, col = found[0], found[1].end()
    check_nots(len(lines) - 1, len(lines[-1]) if lines else 0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python tools/filecheck.py CHECKS_FILE < input", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as handle:
        checks = handle.read()
    try:
        filecheck(sys.stdin.read(), checks)
    except (CheckError, ValueError) as exc:
        print(f"filecheck: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
