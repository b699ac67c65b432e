"""Pass infrastructure: ``Pass``, the registry, pipeline specs and the ``PassManager``."""

from microlith.pipeline.manager import PassManager
from microlith.pipeline.pass_base import (
    PASSES,
    Pass,
    PassContext,
    RewriteFailure,
    get_pass_class,
    register_pass,
)
from microlith.pipeline.spec import format_pipeline, parse_pipeline

__all__ = ["PASSES", "Pass", "PassContext", "PassManager", "RewriteFailure", "format_pipeline",
           "get_pass_class", "parse_pipeline", "register_pass"]
