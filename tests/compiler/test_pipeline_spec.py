"""Pipeline strings, the pass registry and the PassManager (requires, instruments, errors)."""

from __future__ import annotations

import dataclasses
import io
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pytest

from microlith.diagnostics import InternalError, PassError, UsageError
from microlith.ir.core import Graph, Use
from microlith.ir.types import DType, TensorType
from microlith.passes.pipelines import PIPELINES
from microlith.pipeline import (
    PASSES,
    Pass,
    PassContext,
    PassManager,
    format_pipeline,
    parse_pipeline,
    register_pass,
)
from microlith.pipeline.facts import NHWC
from microlith.pipeline.manager import Instrument, PrintIR, Timing
from microlith.pipeline.pass_base import all_passes

# ---- test-only passes (registered by the fixture, removed afterwards) --------------------


@dataclass(frozen=True)
class OptionsPass(Pass):
    name = "test-options"
    summary = "does nothing; has one option of each supported type"
    flag: bool = False
    max_count: int = 2
    ratio: float = 0.5
    mode: Literal["fast", "exact", "slow"] = "fast"
    label: str = "none"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        pass


@dataclass(frozen=True)
class FailingPass(Pass):
    name = "test-fail"
    summary = "fails at the first Neg node"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        raise self.fail(graph.find("Neg")[0], "deliberate failure for the test")


@dataclass(frozen=True)
class ShapeFailingPass(Pass):
    name = "test-value-error"
    summary = "raises a plain ValueError"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        raise ValueError("something is off")


@dataclass(frozen=True)
class CorruptingPass(Pass):
    name = "test-corrupt"
    summary = "breaks a use list (only --verify-each notices)"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        node = graph.find("Neg")[0]
        node.inputs[0].uses.append(Use(node, 0))


@dataclass(frozen=True)
class NeedsPass(Pass):
    name = "test-needs"
    summary = "requires the NHWC fact (from to-nhwc)"
    requires = (NHWC,)

    def run(self, graph: Graph, ctx: PassContext) -> None:
        pass


TEST_PASSES = (OptionsPass, FailingPass, ShapeFailingPass, CorruptingPass, NeedsPass)


@pytest.fixture
def test_passes() -> Iterator[None]:
    all_passes()  # load the built-in passes first
    for cls in TEST_PASSES:
        register_pass(cls)
    try:
        yield
    finally:
        for cls in TEST_PASSES:
            PASSES.pop(cls.name, None)


@pytest.fixture
def graph() -> Graph:
    """x -> Relu -> Neg -> Abs -> output."""
    g = Graph("small")
    x = g.add_input("x", TensorType(DType.FLOAT32, (1, 4)))
    relu = g.add_node("Relu", [x], name="relu")
    neg = g.add_node("Neg", [relu.output], name="neg")
    out = g.add_node("Abs", [neg.output], name="abs")
    g.outputs = [out.output]
    return g


def quiet() -> PassContext:
    return PassContext(warn=lambda message: None)


# ---- round trips ------------------------------------------------------------------------

def _candidates(hint: Any, default: Any) -> list[Any]:
    """Non-default values for an option of type ``hint``, most ordinary first."""
    if typing.get_origin(hint) is Literal:
        return [c for c in typing.get_args(hint) if c != default]
    if hint is bool:
        return [not default]
    if hint is int:
        return [default + 3, default * 2, default + 1]
    if hint is float:
        return [default * 2 + 0.25, default / 2 + 0.25, default / 2]
    if hint is str:
        return [f"{default}x"]
    raise AssertionError(f"option type {hint} cannot be written in a pipeline string")


def _other_value(cls: type[Pass], option: str, hint: Any, default: Any) -> Any:
    """A non-default value the pass accepts (options are checked when a pass is made)."""
    for value in _candidates(hint, default):
        if value == default:
            continue
        try:
            cls(**{option: value})
        except UsageError:
            continue
        return value
    raise AssertionError(f"{cls.name}: no acceptable non-default value for {option}")


@pytest.mark.parametrize("name", sorted(all_passes()))
def test_every_registered_pass_round_trips(name: str) -> None:
    cls = all_passes()[name]
    assert name == name.lower() and " " not in name and cls.summary
    default = cls()
    assert str(default) == name
    assert parse_pipeline(name) == [default]
    hints = typing.get_type_hints(cls)
    for f in cls.option_fields():
        assert f.default is not dataclasses.MISSING, f"{name}: option {f.name} has no default"
        value = _other_value(cls, f.name, hints[f.name], f.default)
        instance = cls(**{f.name: value})
        spec = str(instance)
        assert spec == f"{name}{{{f.name.replace('_', '-')}={_text(value)}}}"
        assert parse_pipeline(spec) == [instance]
        assert format_pipeline(parse_pipeline(spec)) == spec
        if typing.get_origin(hints[f.name]) is Literal:  # every choice of a Literal option
            for choice in typing.get_args(hints[f.name]):
                instance = cls(**{f.name: choice})
                assert parse_pipeline(str(instance)) == [instance]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


@pytest.mark.parametrize("spec", sorted(set(PIPELINES.values())))
def test_default_pipelines_round_trip(spec: str) -> None:
    assert format_pipeline(parse_pipeline(spec)) == spec


@pytest.mark.usefixtures("test_passes")
@pytest.mark.parametrize("spec", [
    "test-options",
    "test-options{flag=true}",
    "test-options{max-count=7}",
    "test-options{max-count=-1}",
    "test-options{ratio=0.125}",
    "test-options{ratio=1e-05}",
    "test-options{ratio=inf}",
    "test-options{mode=exact}",
    "test-options{label=hello}",
    "test-options{flag=true,max-count=0,ratio=3.5,mode=slow,label=x}",
    "infer-shapes,test-options{mode=slow},to-nhwc{inputs=nchw,outputs=nchw},eliminate-dead",
])
def test_canonical_strings_round_trip_exactly(spec: str) -> None:
    passes = parse_pipeline(spec)
    assert format_pipeline(passes) == spec
    assert parse_pipeline(format_pipeline(passes)) == passes


@pytest.mark.usefixtures("test_passes")
@pytest.mark.parametrize("spec, canonical", [
    ("test-options{ratio=0.5}", "test-options"),                 # defaults are omitted
    ("test-options{max_count=3}", "test-options{max-count=3}"),  # '_' keys accepted
    ("test-options{mode=slow,flag=1}", "test-options{flag=true,mode=slow}"),  # field order
    ("test-options{flag=False}", "test-options"),
    ("  fold-pad ,  test-options { ratio = 2 }  ", "fold-pad,test-options{ratio=2.0}"),
    ("test-options{}", "test-options"),
])
def test_non_canonical_strings_normalize(spec: str, canonical: str) -> None:
    assert format_pipeline(parse_pipeline(spec)) == canonical


@pytest.mark.usefixtures("test_passes")
def test_parsed_option_values_are_typed() -> None:
    (p,) = parse_pipeline("test-options{flag=true,max-count=9,ratio=0.75,mode=exact}")
    assert p == OptionsPass(flag=True, max_count=9, ratio=0.75, mode="exact")
    assert isinstance(p.max_count, int) and isinstance(p.ratio, float)


# ---- errors -------------------------------------------------------------------------------

@pytest.mark.usefixtures("test_passes")
@pytest.mark.parametrize("spec, message", [
    ("fold-batchnrom", "unknown pass 'fold-batchnrom' \\(did you mean 'fold-batchnorm'\\?\\)"),
    ("to-nchw", "unknown pass 'to-nchw' \\(did you mean 'to-nhwc'\\?\\)"),
    ("zzzzzz", "unknown pass 'zzzzzz'; `microlith passes` lists them"),
    ("test-options{colour=red}",
     "test-options: unknown option 'colour' \\(options: flag, max-count, ratio, mode, label\\)"),
    ("fold-pad{x=1}", "fold-pad: unknown option 'x' \\(options: none\\)"),
    ("test-options{flag=maybe}", "option flag='maybe' is not a valid bool"),
    ("test-options{max-count=1.5}", "option max_count='1.5' is not a valid int"),
    ("test-options{ratio=fast}", "option ratio='fast' is not a valid float"),
    ("test-options{mode=quick}", "option mode='quick' must be one of fast, exact, slow"),
    ("to-nhwc{inputs=NCHW}", "must be one of nhwc, nchw"),
    ("test-options{flag}", "option 'flag' needs key=value"),
    ("test-options{flag=true,flag=false}", "option 'flag' is given twice"),
    ("test-options{max-count=1,max_count=2}", "option 'max_count' is given twice"),
    ("fold-pad{", "bad pipeline syntax at 'fold-pad\\{'"),
    ("fold-pad}", "bad pipeline syntax"),
    ("fold-pad,,eliminate-dead", "bad pipeline syntax at ',eliminate-dead'"),
    (",fold-pad", "bad pipeline syntax"),
    ("fold-pad,", "trailing ','"),
    ("fold-pad eliminate-dead", "bad pipeline syntax"),
    ("Fold-Pad", "bad pipeline syntax at 'Fold-Pad'"),
    ("to-nhwc{inputs=nchw}{outputs=nchw}", "bad pipeline syntax"),
    ("", "empty pipeline"),
    ("   ", "empty pipeline"),
])
def test_bad_pipelines_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_pipeline(spec)


def test_registry_rejects_bad_names() -> None:
    @dataclass(frozen=True)
    class Shouting(Pass):
        name = "Shouting"

    with pytest.raises(ValueError, match="kebab-case"):
        register_pass(Shouting)

    @dataclass(frozen=True)
    class Impostor(Pass):
        name = "fold-pad"

    all_passes()
    with pytest.raises(ValueError, match="registered twice"):
        register_pass(Impostor)


# ---- requires -----------------------------------------------------------------------------

@pytest.mark.usefixtures("test_passes")
def test_requires_must_run_earlier(graph: Graph) -> None:
    with pytest.raises(PassError, match="pass 'test-needs' needs 'nhwc' \\(from to-nhwc\\) "
                                        "earlier in the pipeline"):
        PassManager.from_spec("test-needs,to-nhwc").run(graph, quiet())
    assert "applied_passes" not in graph.meta or graph.meta["applied_passes"] == []
    PassManager.from_spec("to-nhwc,test-needs").run(graph, quiet())
    assert graph.meta["applied_passes"] == ["to-nhwc", "test-needs"]


@pytest.mark.usefixtures("test_passes")
def test_requires_is_satisfied_by_an_earlier_run_on_the_same_graph(graph: Graph) -> None:
    PassManager.from_spec("to-nhwc").run(graph, quiet())
    PassManager.from_spec("test-needs").run(graph, quiet())
    fresh = Graph()
    with pytest.raises(PassError, match="needs 'nhwc'"):
        PassManager.from_spec("test-needs").check_facts(fresh.meta.get("facts", []))


def test_a_fact_invalidated_later_is_missing_and_named() -> None:
    """plan-memory before fuse-requantize is refused, naming who invalidated the plan."""
    manager = PassManager(parse_pipeline("insert-qdq,legalize-c,prepare,plan-memory,"
                                         "fuse-requantize"))
    facts = manager.check_facts(["calibrated"])
    assert "memory-planned" not in facts and "prepared" not in facts
    assert manager.lost_by["memory-planned"] == "fuse-requantize"
    with pytest.raises(PassError, match="pass 'plan-memory' needs 'target-ops' "
                                        "\\(from legalize-tflite or legalize-c\\)"):
        PassManager(parse_pipeline("plan-memory,legalize-c")).check_facts()


# ---- instruments ----------------------------------------------------------------------------

def test_print_ir_after_all(graph: Graph) -> None:
    stream = io.StringIO()
    PassManager.from_spec("infer-shapes,fuse-activation,eliminate-dead",
                          instruments=[PrintIR(stream=stream)]).run(graph, quiet())
    text = stream.getvalue()
    headers = [line for line in text.splitlines() if line.startswith("// -----")]
    assert headers == ["// ----- IR after infer-shapes -----",
                       "// ----- IR after fuse-activation -----",
                       "// ----- IR after eliminate-dead -----"]
    assert text.count("graph @small(") == 3 and text.endswith("}\n")


def test_print_ir_after_a_named_pass_shows_its_options(graph: Graph) -> None:
    stream = io.StringIO()
    PassManager.from_spec("infer-shapes,to-nhwc{outputs=nchw},eliminate-dead",
                          instruments=[PrintIR(names=("to-nhwc",), stream=stream)]
                          ).run(graph, quiet())
    text = stream.getvalue()
    assert text.startswith("// ----- IR after to-nhwc{outputs=nchw} -----\ngraph @small(")
    assert text.count("// -----") == 1


def test_timing_report_lists_every_pass(graph: Graph) -> None:
    timing = Timing()
    PassManager.from_spec("infer-shapes,fold-constants,eliminate-dead",
                          instruments=[timing]).run(graph, quiet())
    assert [name for name, _, _ in timing.records] == ["infer-shapes", "fold-constants",
                                                       "eliminate-dead"]
    assert all(seconds >= 0 and nodes == 3 for _, seconds, nodes in timing.records)
    report = timing.report().splitlines()
    assert report[0].split() == ["pass", "ms", "%", "nodes"]
    assert [line.split()[0] for line in report[1:]] == ["infer-shapes", "fold-constants",
                                                        "eliminate-dead", "total"]


def test_instruments_see_before_and_after_in_order(graph: Graph) -> None:
    events: list[str] = []

    class Recorder(Instrument):
        def before(self, pass_: Pass, graph: Graph) -> None:
            events.append(f"before {pass_}")

        def after(self, pass_: Pass, graph: Graph, seconds: float) -> None:
            events.append(f"after {pass_}")

    PassManager.from_spec("infer-shapes,fold-pad", instruments=[Recorder()]).run(graph, quiet())
    assert events == ["before infer-shapes", "after infer-shapes", "before fold-pad",
                      "after fold-pad"]


# ---- failures ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("test_passes")
def test_failure_names_pass_node_and_passes_before(graph: Graph) -> None:
    manager = PassManager.from_spec("infer-shapes,fuse-activation,test-fail,eliminate-dead")
    with pytest.raises(PassError) as info:
        manager.run(graph, quiet())
    assert str(info.value) == (
        "pass 'test-fail' failed at node 'neg' (Neg): deliberate failure for the test "
        "[passes before it: infer-shapes, fuse-activation]")
    context = info.value.context.splitlines()  # type: ignore[attr-defined]
    at = next(i for i, line in enumerate(context) if line.endswith("# neg"))
    assert context[at + 1].strip() and set(context[at + 1].strip()) == {"^"}
    assert context[at + 1].index("^") == context[at].index("%")


@pytest.mark.usefixtures("test_passes")
def test_first_pass_failure_says_none_ran_before(graph: Graph) -> None:
    with pytest.raises(PassError, match=r"pass 'test-fail' failed at node 'neg' \(Neg\): "
                                        r".*\[passes before it: none\]"):
        PassManager.from_spec("test-fail").run(graph, quiet())


@pytest.mark.usefixtures("test_passes")
def test_plain_errors_inside_a_pass_are_internal_errors(graph: Graph) -> None:
    """A ValueError escaping a pass is a bug in the pass, not the user's input."""
    with pytest.raises(InternalError, match=r"pass 'test-value-error' crashed: ValueError: "
                                            r"something is off \[passes before it: "
                                            r"infer-shapes\]"):
        PassManager.from_spec("infer-shapes,test-value-error").run(graph, quiet())


@pytest.mark.usefixtures("test_passes")
def test_verify_each_catches_a_corrupting_pass(graph: Graph) -> None:
    PassManager.from_spec("infer-shapes,test-corrupt").run(graph.copy(), quiet())  # unnoticed
    with pytest.raises(InternalError, match=r"pass 'test-corrupt' crashed: VerificationError: "
                                            r"node 'neg' \(Neg\): use list of 'relu' .*"
                                            r"\[passes before it: infer-shapes\]"):
        PassManager.from_spec("infer-shapes,test-corrupt", verify_each=True).run(graph, quiet())


def test_real_pass_failure_is_named(graph: Graph) -> None:
    bad = graph.add_node("Add", [graph.inputs[0], graph.add_constant(np.zeros(3, np.float32))],
                         name="bad_add", output_types=[TensorType(DType.FLOAT32, (1, 4))])
    graph.outputs.append(bad.output)
    with pytest.raises(PassError, match=r"pass 'infer-shapes' failed at node 'bad_add' \(Add\): "
                                        r"shapes \(1, 4\) and \(3,\) do not broadcast "
                                        r"\[passes before it: eliminate-dead\]"):
        PassManager.from_spec("eliminate-dead,infer-shapes").run(graph, quiet())


def test_manager_spec_property() -> None:
    spec = "infer-shapes,to-nhwc{inputs=nchw},fold-pad"
    assert PassManager.from_spec(spec).spec == spec
