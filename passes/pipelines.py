"""The default pipelines, as plain pipeline strings a user can print and edit."""

from __future__ import annotations

CANONICALIZE = ("infer-shapes,fold-constants,eliminate-dead,lower-fc,fold-batchnorm,"
                "fuse-activation,to-nhwc,fold-pad,eliminate-dead")

PIPELINES: dict[str, str] = {
    "float": CANONICALIZE + ",legalize-tflite",
}


def default_pipeline(mode: str = "float") -> str:
    return PIPELINES[mode]
