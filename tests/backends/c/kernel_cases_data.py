"""C kernel test cases: data movement (pad, concat, transpose, reshape-like views) as
one-node int8 graphs (see ``test_c_kernels.py``)."""

from __future__ import annotations

import numpy as np
from harness import Case, Const, make_case, one_node_graph, qparams, qtype
from kernel_cases import Generator, int8, registrar

GENERATORS: dict[str, Generator] = {}
generator = registrar(GENERATORS)


# --------------------------------------------------------------------------- data movement


@generator("pad")
def pad_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, shape, pads, value in [
            ("spatial NHWC", (1, 4, 5, 3), (0, 1, 2, 0, 0, 2, 1, 0), 0.0),
            ("value 1.5", (1, 3, 3, 2), (0, 1, 1, 0, 0, 1, 1, 0), 1.5),
            ("rank 2 all sides", (3, 5), (1, 2, 3, 4), 0.0),
            ("channels", (2, 2, 2, 3), (0, 0, 0, 1, 0, 0, 0, 2), -0.25),
            ("rank 5 merged", (2, 3, 2, 2, 4), (0, 1, 0, 0, 0, 0, 2, 0, 0, 0), 0.0)]:
        q = (float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)))
        graph = one_node_graph("Pad", [qtype(shape, *q)], qparams(*q), f"pad {name}",
                               pads=pads, value=value)
        cases.append(make_case(graph.name, graph, rng))
    return cases


@generator("concat")
def concat_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, shapes, axis, act, const in [
            ("channels", [(1, 4, 4, 3), (1, 4, 4, 5)], 3, "NONE", False),
            ("axis 1 three inputs", [(2, 1, 3), (2, 4, 3), (2, 2, 3)], 1, "NONE", False),
            ("axis 0 relu", [(1, 6), (2, 6)], 0, "RELU", False),
            ("negative axis relu6 const", [(1, 3, 2, 2), (1, 3, 2, 4)], -1, "RELU6", True)]:
        q = (float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)))
        operands = [qtype(s, *q) for s in shapes]
        if const:
            operands[-1] = Const(int8(rng, shapes[-1]), qparams(*q))
        graph = one_node_graph("Concat", operands, qparams(*q), f"concat {name}", axis=axis,
                               activation=act)
        cases.append(make_case(graph.name, graph, rng))
    return cases


@generator("transpose")
def transpose_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape, perm in [((1, 4, 5, 3), (0, 3, 1, 2)), ((3, 4, 5), (2, 0, 1)),
                        ((2, 3, 1, 4, 2), (4, 1, 3, 0, 2)), ((6, 7), (1, 0)),
                        ((2, 3, 4, 5), (0, 1, 3, 2))]:
        graph = one_node_graph("Transpose", [qtype(shape, 0.05, 3)], qparams(0.05, 3),
                               f"transpose {shape} {perm}", perm=perm)
        cases.append(make_case(graph.name, graph, rng))
    return cases


@generator("reshape")
def reshape_cases(rng: np.random.Generator) -> list[Case]:
    q = (0.04, -5)
    shape_c = Const(np.array([1, -1], np.int64))
    graphs = [
        (one_node_graph("Reshape", [qtype((1, 2, 2, 16), *q), shape_c], qparams(*q),
                        "reshape flatten"), False),
        (one_node_graph("Reshape", [qtype((1, 2, 2, 16), *q), shape_c], qparams(*q),
                        "reshape aliased"), True),
        (one_node_graph("Flatten", [qtype((2, 3, 4), *q)], qparams(*q), "flatten", axis=1),
         False),
        (one_node_graph("Squeeze", [qtype((1, 1, 1, 7), *q)], qparams(*q), "squeeze",
                        axes=(1, 2)), False),
        (one_node_graph("Unsqueeze", [qtype((3, 7), *q)], qparams(*q), "unsqueeze", axes=(0,)),
         True),
        (one_node_graph("Identity", [qtype((5,), *q)], qparams(*q), "identity"), False),
    ]
    return [make_case(g.name, g, rng, alias=alias) for g, alias in graphs]
