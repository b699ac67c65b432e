"""From compile options to the pipeline that runs: one source of truth, the pass objects.

The pipeline is the default one for the mode (``microlith.passes.pipelines``) or the
user's ``--pipeline`` text, parsed. Command-line flags are edits of it:

* ``--calibration-method`` sets ``calibrate{method=...}``; ``--io-dtype`` and ``--fallback``
  set the options of ``insert-qdq``. With ``--pipeline`` the pass must be there, and a
  flag that contradicts an option the pipeline sets explicitly is an error.
* ``--target`` appends the target's tail (e.g. ``legalize-tflite``) unless the pipeline
  already contains one of the tail's passes; then the pipeline must end the way the
  target needs (its facts are checked, so ``plan-memory`` before ``fuse-requantize`` is
  refused instead of leaving a stale plan).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from microlith.diagnostics import UsageError
from microlith.pipeline import Pass, PassManager, format_pipeline, parse_pipeline
from microlith.pipeline.facts import PROVIDED_BY
from microlith.targets import Target

#: flag -> (pass name, option name)
FLAG_OPTIONS = {"--calibration-method": ("calibrate", "method"),
                "--io-dtype": ("insert-qdq", "io_dtype"),
                "--fallback": ("insert-qdq", "fallback"),
                "--strict-qdq": ("insert-qdq", "strict"),
                "--keep-float": ("insert-qdq", "keep_float"),
                "--input-dtype": ("insert-qdq", "input_dtype"),
                "--output-dtype": ("insert-qdq", "output_dtype"),
                "--per-tensor": ("insert-qdq", "per_tensor"),
                "--int16": ("insert-qdq", "int16"),
                "--optimize": ("select-kernels", "optimize"),
                "--hybrid": ("select-kernels", "hybrid")}


def explicit_options(spec: str) -> dict[int, set[str]]:
    """For the pipeline text ``spec``: pass position -> the option names written in it."""
    out: dict[int, set[str]] = {}
    for index, item in enumerate(_split_items(spec)):
        body = item.partition("{")[2].rstrip("} ")
        out[index] = {part.split("=", 1)[0].strip().replace("-", "_")
                      for part in body.split(",") if "=" in part}
    return out


def _split_items(spec: str) -> list[str]:
    items, depth, current = [], 0, ""
    for ch in spec:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        items.append(current)
    return items


def apply_flags(passes: list[Pass], flags: dict[str, Any], explicit: dict[int, set[str]] | None
                ) -> list[Pass]:
    """Set the options ``flags`` name (flag -> value; None = not given)."""
    passes = list(passes)
    for flag, value in flags.items():
        if value is None:
            continue
        pass_name, option = FLAG_OPTIONS[flag]
        positions = [i for i, p in enumerate(passes) if p.name == pass_name]
        if not positions:
            raise UsageError(f"{flag} edits the {pass_name!r} pass, which the pipeline does not "
                             f"contain")
        for i in positions:
            current = getattr(passes[i], option)
            if explicit is not None and option in explicit.get(i, set()) and current != value:
                raise UsageError(f"{flag} {value} contradicts --pipeline, which sets "
                                 f"{pass_name}{{{option.replace('_', '-')}={current}}}")
            passes[i] = dataclasses.replace(passes[i], **{option: value})
    return passes


def with_target_tail(passes: list[Pass], target: Target) -> list[Pass]:
    """Append the target's tail unless the pipeline already has one of its passes."""
    names = {p.name for p in passes}
    tail = parse_pipeline(",".join(target.tail)) if target.tail else []
    if any(p.name in names for p in tail):
        return passes
    return passes + tail


def check_for_target(manager: PassManager, target: Target) -> None:
    """The pipeline leaves every fact the target's emitter needs, or a clear UsageError."""
    facts = manager.check_facts()
    missing = [f for f in target.requires if f not in facts]
    if missing:
        why = []
        for fact in missing:
            if fact in manager.lost_by:
                why.append(f"'{manager.lost_by[fact]}' invalidated {fact!r} after "
                           f"{PROVIDED_BY.get(fact, '?')}")
            else:
                why.append(f"{fact!r} is provided by {PROVIDED_BY.get(fact, 'no pass')}")
        raise UsageError(f"--target {target.name} needs the pipeline to end with "
                         f"{','.join(target.tail)}: {'; '.join(why)}")


def pipeline_text(passes: list[Pass]) -> str:
    return format_pipeline(passes)
