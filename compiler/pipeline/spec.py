"""Pipeline spec text: ``pass-a,pass-b{key=value,flag=true},pass-c``.

Grammar: ``pipeline := item ("," item)*``, ``item := name ["{" opt ("," opt)* "}"]``,
``opt := key "=" value``. Keys may use ``-`` or ``_``. Values are parsed by the
option's declared type (bool: true/false, int, float, str; a ``Literal`` type
restricts the choices). ``format_pipeline(parse_pipeline(s)) == s`` whenever ``s``
is canonical (options in declaration order, defaults omitted).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any

from microlith.diagnostics import UsageError
from microlith.pipeline.pass_base import Pass, get_pass_class

_ITEM = re.compile(r"\s*([a-z0-9][a-z0-9-]*)\s*(?:\{([^{}]*)\})?\s*(?:,|$)")


def format_option(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parse_value(pass_name: str, field: dataclasses.Field[Any], hint: Any, text: str) -> Any:
    text = text.strip()
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if text not in [str(c) for c in choices]:
            raise UsageError(f"{pass_name}: option {field.name}={text!r} must be one of "
                             f"{', '.join(map(str, choices))}")
        return next(c for c in choices if str(c) == text)
    try:
        if hint is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is str:
            return text
    except ValueError:
        name = getattr(hint, "__name__", str(hint))
        raise UsageError(f"{pass_name}: option {field.name}={text!r} is not a valid {name}"
                         ) from None
    raise UsageError(f"{pass_name}: option {field.name} has an unsupported type {hint}")


def make_pass(name: str, raw_options: dict[str, str]) -> Pass:
    cls = get_pass_class(name)
    fields = {f.name: f for f in cls.option_fields()}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, text in raw_options.items():
        attr = key.replace("-", "_")
        if attr not in fields:
            known = ", ".join(k.replace("_", "-") for k in fields) or "none"
            raise UsageError(f"{name}: unknown option {key!r} (options: {known})")
        kwargs[attr] = _parse_value(name, fields[attr], hints[attr], text)
    return cls(**kwargs)


def parse_pipeline(spec: str) -> list[Pass]:
    """Parse a pipeline string into pass instances; errors point at the bad text."""
    passes: list[Pass] = []
    pos = 0
    spec = spec.strip()
    while pos < len(spec):
        match = _ITEM.match(spec, pos)
        if match is None or match.end() == pos:
            raise UsageError(f"bad pipeline syntax at {spec[pos:pos + 20]!r} "
                             f"(expected name or name{{key=value,...}})")
        name, body = match.group(1), match.group(2)
        options: dict[str, str] = {}
        if body and body.strip():
            for part in body.split(","):
                if "=" not in part:
                    raise UsageError(f"{name}: option {part.strip()!r} needs key=value")
                key, value = part.split("=", 1)
                key = key.strip()
                if key.replace("-", "_") in {k.replace("-", "_") for k in options}:
                    raise UsageError(f"{name}: option {key!r} is given twice")
                options[key] = value
        passes.append(make_pass(name, options))
        pos = match.end()
        if spec[match.start():pos].rstrip().endswith(",") and not spec[pos:].strip():
            raise UsageError(f"bad pipeline syntax: trailing ',' after {name!r} "
                             f"(expected another pass name)")
    if not passes:
        raise UsageError("empty pipeline")
    return passes


def format_pipeline(passes: list[Pass]) -> str:
    return ",".join(str(p) for p in passes)
