"""The FileCheck-style checker the pass tests rely on must fail when it should."""

from __future__ import annotations

import pytest

from tools.filecheck import CheckError, filecheck

TEXT = """\
graph @main(%arg0: tensor<1x4xf32>) {
  %c0 = const tensor<3x4xf32> #8f92d463  # w
  %0 = FullyConnected(%arg0, %c0) {activation="RELU"} : tensor<1x3xf32>  # fc
  %1 = Softmax(%0) {axis=-1} : tensor<1x3xf32>  # softmax
  return %1
}
"""


def test_passing_directives() -> None:
    filecheck(TEXT, """
        // CHECK: graph @main
        // CHECK-NEXT: const tensor<3x4xf32> #{{[0-9a-f]{8}}}
        // CHECK-NOT: Transpose
        // CHECK: FullyConnected(%arg0,   %c0)
        // CHECK-SAME: activation="RELU"
        // CHECK-SAME: tensor<1x3xf32>
        // CHECK-NEXT: Softmax(%0)
        // CHECK: return %1
        // CHECK-NOT: Conv
    """)


@pytest.mark.parametrize("checks, where", [
    ("CHECK: Conv(", "no match"),
    ("CHECK: Softmax\nCHECK: FullyConnected", "no match"),           # order matters
    ("CHECK: graph\nCHECK-NEXT: FullyConnected", "does not match"),   # not the next line
    ("CHECK: Softmax\nCHECK-SAME: RELU", "rest of input line 4"),    # not on the same line
    ("CHECK: FullyConnected\nCHECK-SAME: %0 =", "rest of input line 3"),  # before the match
    ("CHECK: graph\nCHECK-NOT: const\nCHECK: Softmax", "excluded pattern"),
    ("CHECK: Softmax\nCHECK-NOT: return", "excluded pattern"),     # up to the end
    ("CHECK: {{%[a-z]+9}}", "no match"),
])
def test_failing_directives(checks: str, where: str) -> None:
    with pytest.raises(CheckError, match=where) as info:
        filecheck(TEXT, checks)
    message = str(info.value)
    assert "check line" in message and "input near here:" in message
    assert "|" in message  # quotes numbered input lines


def test_failure_quotes_the_check_and_the_nearby_text() -> None:
    with pytest.raises(CheckError) as info:
        filecheck(TEXT, "CHECK: FullyConnected\nCHECK-NEXT: Conv(%0)")
    message = str(info.value)
    assert "CHECK-NEXT: Conv(%0) (check line 2)" in message
    assert ">    4 |   %1 = Softmax" in message


def test_check_not_only_looks_between_matches() -> None:
    filecheck(TEXT, "CHECK: Softmax\nCHECK-NOT: FullyConnected\nCHECK: return")


def test_no_directives_is_an_error() -> None:
    with pytest.raises(ValueError, match="no CHECK"):
        filecheck(TEXT, "FullyConnected")
    with pytest.raises(ValueError, match="needs a previous match"):
        filecheck(TEXT, "CHECK-NEXT: graph")
