"""The engine exercises: the backward graph walk of ``minivae.tensor``, written by the learner.

Two functions, graded on small graphs built with minivae's ops against what
``Tensor.backward`` does on the same graph:

    topological_order(root) -> list of Tensors
        every tensor of the graph that requires a gradient, root first, each one
        before every tensor it was computed from (after every tensor that uses it);
    backward_walk(root, grad_out) -> None
        backpropagate grad_out (d loss / d root) and ADD each leaf's gradient into
        its ``.grad``, as ``root.backward(grad_out)`` does.

The graph, as the engine stores it: a Tensor ``t`` made by an op has
``t._ctx``, the op's Function object, whose ``parents`` are the op's input Tensors
and whose ``backward(g)`` returns one gradient per parent (None where a parent
needs none); a leaf (an input) has ``t._ctx is None``. ``t.requires_grad`` says
whether a gradient must flow into ``t``.

The cases are chosen for the classic mistakes: a tensor used twice by one op
(x * x), a diamond whose two branches have different lengths (a node processed
before all its users have passed their gradient back), constants inside the graph,
a chain of 3000 ops (a recursive walk passes Python's recursion limit), a
non-scalar root, and two walks in a row (leaf gradients add up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from minivae import ops
from minivae.backend import np
from minivae.tensor import Tensor, _topological_order


@dataclass(frozen=True)
class EngineExercise:
    """One function of the engine's graph walk, graded on the graphs of ``GRAPHS``."""

    name: str
    title: str
    math: str
    lecture: str
    inputs: tuple
    returns: str
    shapes: str
    hint: str
    grade: Callable  # grade(answer, fname) -> None or a failure message

    kind = "engine"

    @property
    def answer_name(self) -> str:
        return self.name

    @property
    def arguments(self) -> tuple:
        return self.inputs


# ----------------------------------------------------------------------------- the graphs


@dataclass
class Graph:
    """A graph built fresh for one walk: its root, the upstream gradient, and its named tensors."""

    label: str
    root: Tensor
    grad_out: np.ndarray
    tensors: dict  # name -> Tensor, leaves and intermediates


def _leaf(data, name, requires_grad=True):
    return Tensor(np.asarray(data, dtype=np.float64), requires_grad=requires_grad, name=name)


def _named(t, name):
    t.name = name
    return t


def _ones(t):
    return np.ones(t.shape)


def _chain():
    x = _leaf([0.5, -1.0, 2.0], "x")
    a = _named(ops.exp(x) * 2.0, "a = 2 exp(x)")
    out = _named((a * a).sum(), "out = sum(a * a)")
    return Graph("chain: out = sum((2 exp(x))^2)", out, _ones(out), {"x": x, "a": a})


def _fan_out():
    x = _leaf([[0.3, -0.7, 1.1], [2.0, -0.2, 0.5]], "x")
    a = _named(x * x, "a = x * x")  # one op with the same tensor twice among its parents
    b = _named(x * 3.0, "b = 3 x")
    c = _named(ops.exp(x), "c = exp(x)")
    s = _named(a + b, "a + b")
    out = _named((s + c).sum(), "out = sum(a + b + c)")
    return Graph(
        "fan-out: out = sum(x * x + 3 x + exp(x)), x used four times",
        out,
        _ones(out),
        {"x": x, "a": a, "b": b, "c": c},
    )


def _diamond():
    x = _leaf([0.2, -0.4, 0.9], "x")
    a = _named(x * 2.0, "a = 2 x")
    b = _named(ops.exp(a), "b = exp(a)")
    c = _named(_named(ops.tanh(b), "tanh(b)") * a, "c = tanh(b) * a")  # a: directly and via b
    out = _named(c.sum(), "out = sum(c)")
    return Graph(
        "diamond: a feeds c directly and through b = exp(a), c = tanh(b) * a",
        out,
        _ones(out),
        {"x": x, "a": a, "b": b, "c": c},
    )


def _shared_weight():
    x1 = _leaf([[0.5, -1.0], [1.5, 0.3], [-0.2, 0.8]], "x1", requires_grad=False)
    x2 = _leaf([[1.0, 0.4], [-0.6, 0.9], [0.1, -1.3]], "x2", requires_grad=False)
    W = _leaf([[0.7, -0.3, 0.2], [0.1, 0.5, -0.8]], "W")
    b = _leaf([0.05, -0.1, 0.2], "b")
    u1 = _named(x1 @ W, "x1 W")
    u2 = _named(x2 @ W, "x2 W")
    h1 = _named(ops.tanh(_named(u1 + b, "x1 W + b")), "h1 = tanh(x1 W + b)")  # b broadcast
    h2 = _named(ops.sigmoid(u2), "h2 = sigmoid(x2 W)")
    out = _named((h1 * h2).sum(), "out = sum(h1 * h2)")
    return Graph(
        "shared weight: W used by two layers, the bias b broadcast over the batch",
        out,
        _ones(out),
        {"x1": x1, "x2": x2, "W": W, "b": b, "h1": h1, "h2": h2},
    )


def _constants():
    x = _leaf([1.0, -2.0, 0.5], "x")
    c = _leaf([0.3, 0.3, -1.0], "c", requires_grad=False)  # a constant inside the graph
    a = _named(_named(x * c, "x * c") + ops.exp(c), "a = x * c + exp(c)")
    out = _named((a * x).sum(), "out = sum(a * x)")
    return Graph(
        "constants: c needs no gradient and must get none",
        out,
        _ones(out),
        {"x": x, "c": c, "a": a},
    )


def _long_chain(n=3000):
    x = _leaf([0.5, -0.25], "x")
    y = x
    for k in range(n):
        y = _named(y * 1.0005, f"y{k + 1} = 1.0005 y{k}")
    out = _named(y.sum(), "out")
    return Graph(f"long chain: {n} multiplications in a row", out, _ones(out), {"x": x})


def _non_scalar_root():
    x = _leaf([[0.1, 0.2, -0.3], [0.4, -0.5, 0.6]], "x")
    y = _named(_named(ops.sigmoid(x), "sigmoid(x)") * x, "y = sigmoid(x) * x")
    g = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0]])
    return Graph("non-scalar root: y (2, 3) with a given grad_out", y, g, {"x": x})


GRAPHS = (_chain, _fan_out, _diamond, _shared_weight, _constants, _long_chain, _non_scalar_root)


def _nodes_needing_grad(root) -> list:
    """Every tensor reachable from root through parents that require a gradient (the reference)."""
    return _topological_order(root)


def _describe(t: Tensor) -> str:
    if t.name:
        return t.name
    if t._ctx is None:
        return f"a leaf of shape {t.shape}"
    return f"the output of {type(t._ctx).__name__} (shape {t.shape})"


def _all_tensors(root) -> list:
    """The tensors that need a gradient, and the constants the ops read, from root down."""
    out, seen, stack = [], set(), [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        if node._ctx is not None:
            stack.extend(node._ctx.parents)
    return out


def _uses(root) -> dict:
    """id(tensor) -> the ops that use it (one entry per use: x * x uses x twice)."""
    uses = {}
    for node in _nodes_needing_grad(root):
        if node._ctx is not None:
            for p in node._ctx.parents:
                uses.setdefault(id(p), []).append(type(node._ctx).__name__)
    return uses


# ----------------------------------------------------------------------------- grading


def _grade_order(answer, fname):
    for build in GRAPHS:
        graph = build()
        where = f"on the graph {graph.label!r}"
        try:
            order = answer(graph.root)
        except RecursionError:
            return (
                f"{fname} {where} ran past Python's recursion limit: a recursive depth-first "
                "search cannot walk a long chain. Keep your own stack (a list of "
                "(node, children_done) pairs), as minivae.tensor does."
            )
        if not isinstance(order, (list, tuple)) or not all(isinstance(t, Tensor) for t in order):
            return (
                f"{fname} {where} returned {type(order).__name__}; it must return a list of "
                "the graph's Tensors"
            )
        wanted = _nodes_needing_grad(graph.root)
        wanted_ids = {id(t) for t in wanted}
        seen = {}
        for k, t in enumerate(order):
            if id(t) in seen:
                return (
                    f"{fname} {where}: {_describe(t)} appears twice (positions {seen[id(t)]} "
                    f"and {k}); each tensor must come once, however many ops use it"
                )
            seen[id(t)] = k
        if not order or order[0] is not graph.root:
            return f"{fname} {where}: the first tensor must be the root, {_describe(graph.root)}"
        extra = [t for t in order if id(t) not in wanted_ids]
        if extra:
            t = extra[0]
            why = (
                "it has requires_grad=False: no gradient flows into it, so the walk skips it"
                if not t.requires_grad
                else "it is not part of this graph"
            )
            return f"{fname} {where}: {_describe(t)} should not be in the order: {why}"
        missing = [t for t in wanted if id(t) not in seen]
        if missing:
            return (
                f"{fname} {where}: {len(missing)} tensor(s) that need a gradient are missing, "
                f"for example {_describe(missing[0])}; follow node._ctx.parents from the "
                "root down to the leaves"
            )
        for t in order:
            if t._ctx is None:
                continue
            for p in t._ctx.parents:
                if id(p) in seen and seen[id(p)] < seen[id(t)]:
                    return (
                        f"{fname} {where}: {_describe(p)} (position {seen[id(p)]}) comes "
                        f"before {_describe(t)} (position {seen[id(t)]}), which is computed "
                        "from it. A tensor's gradient is complete only once every tensor "
                        "that uses it has passed its gradient back, so it must come after "
                        "all of them (a post-order of the depth-first search, reversed)."
                    )
    return None


def _close(a, b):
    return np.allclose(a, b, rtol=1e-10, atol=1e-12)


def _walk_once(answer, fname, graph, where):
    try:
        result = answer(graph.root, graph.grad_out.copy())
    except RecursionError:
        return (
            f"{fname} {where} ran past Python's recursion limit: walk the graph with a loop "
            "over your topological order (or your own stack), not with recursion"
        )
    if result is not None:
        return (
            f"{fname} {where} returned {type(result).__name__}; it must return None and "
            "leave the gradients in the leaves' .grad, as Tensor.backward does"
        )
    return None


def _compare_grads(fname, where, graph, expected: dict, uses: dict):
    for name, t in graph.tensors.items():
        want = expected[name]
        got = t.grad
        if t._ctx is not None:  # an intermediate: Tensor.backward keeps no gradient there
            if got is not None:
                return (
                    f"{fname} {where}: the intermediate tensor {_describe(t)} got a .grad; "
                    "Tensor.backward keeps gradients only on leaves (hold the others in a "
                    "dict keyed by id(tensor) and let them go)"
                )
            continue
        if not t.requires_grad:
            if got is not None:
                return (
                    f"{fname} {where}: {name} has requires_grad=False and must get no "
                    "gradient (skip parents whose requires_grad is False)"
                )
            continue
        if got is None:
            return (
                f"{fname} {where}: leaf {name} got no gradient (its .grad is None); every "
                "leaf with requires_grad=True that the root depends on gets one"
            )
        got = np.asarray(got.data if isinstance(got, Tensor) else got)
        if got.shape != want.shape:
            return (
                f"{fname} {where}: leaf {name} got a gradient of shape {got.shape}, but it "
                f"has shape {want.shape}"
            )
        if not _close(got, want):
            k = np.unravel_index(np.argmax(np.abs(got - want)), want.shape)
            fans = [(n, u) for n, u in uses.items() if len(u) > 1]
            clue = ""
            if fans:
                named = {id(v): v for v in _all_tensors(graph.root)}
                listed = "; ".join(
                    f"{_describe(named[n])} by {', '.join(u)}" for n, u in fans if n in named
                )
                clue = (
                    f" In this graph a tensor is used more than once ({listed}): the gradients "
                    "of all its uses must be ADDED, and its own backward may run only once all "
                    "of them have arrived."
                )
            return (
                f"{fname} {where}: leaf {name} has the wrong gradient; element "
                f"{tuple(int(i) for i in k)}: expected {want[k]:.10g} (Tensor.backward), "
                f"got {got[k]:.10g}.{clue}"
            )
    return None


def _grade_walk(answer, fname):
    for build in GRAPHS:
        ref = build()
        ref.root.backward(ref.grad_out)
        expected = {
            n: (None if t.grad is None else np.asarray(t.grad)) for n, t in ref.tensors.items()
        }
        graph = build()
        where = f"on the graph {graph.label!r}"
        problem = _walk_once(answer, fname, graph, where)
        if problem is None:
            problem = _compare_grads(fname, where, graph, expected, _uses(graph.root))
        if problem is not None:
            return problem
    # two walks in a row on graphs sharing the leaf x: its gradient adds up
    x = _leaf([0.5, -1.5], "x")
    first, second = (x * x).sum(), (x * 3.0).sum()
    where = "after two walks in a row, of sum(x * x) and of sum(3 x)"
    for root in (first, second):
        problem = _walk_once(answer, fname, Graph("two walks", root, np.ones(()), {}), where)
        if problem is not None:
            return problem
    want = 2.0 * x.data + 3.0
    got = None if x.grad is None else np.asarray(x.grad)
    if got is None or not _close(got, want):
        return (
            f"{fname} {where}: x.grad should be {want} (2 x + 3, the sum of both walks' "
            f"gradients, as Tensor.backward leaves it), got {got}. Add into a leaf's "
            "existing .grad: leaf.grad = g if leaf.grad is None else leaf.grad + g."
        )
    return None


_LECTURE = (
    "PGM Lecture 30, 'How to compute derivatives?' (how to compute dC/dtheta and "
    "dC/dphi: backpropagation through the whole cost)"
)
_GRAPH_SHAPES = (
    "seven small graphs of minivae ops (float64): a chain, x * x (fan-out), a "
    "diamond, a shared weight, constants, 3000 ops in a row, a non-scalar root"
)

ENGINE = (
    EngineExercise(
        name="topological_order",
        title="the order of the backward walk: a topological sort of the graph",
        math="every tensor that requires a gradient, reachable from root through "
        "node._ctx.parents; root first, and each tensor after every tensor that uses it",
        lecture=_LECTURE,
        inputs=("root",),
        returns="a list of Tensors, root first",
        shapes=_GRAPH_SHAPES,
        hint="a depth-first search that appends a node once all its parents are done gives "
        "leaves first; reverse that list. Use an explicit stack (no recursion: one graph is "
        "3000 ops deep), a set of id(node) for the visited ones, and skip parents with "
        "requires_grad False.",
        grade=_grade_order,
    ),
    EngineExercise(
        name="backward_walk",
        title="the backward walk: gradients from the root to the leaves, added on fan-out",
        math="grads[root] = grad_out; for each node in topological order: "
        "g_k = node._ctx.backward(grads[node])[k] is added into grads[parent_k]; at a leaf, "
        "leaf.grad += grads[leaf]",
        lecture=_LECTURE,
        inputs=("root", "grad_out"),
        returns="None (the leaves' .grad hold the gradients)",
        shapes=_GRAPH_SHAPES + "; grad_out has the root's shape",
        hint="walk your topological_order; keep the gradients of non-leaves in a dict keyed by "
        "id(tensor); ctx.backward(g) returns a tuple with one entry per parent (None: no "
        "gradient) and must run once per node, after all the node's users; a parent listed "
        "twice (x * x) receives two gradients.",
        grade=_grade_walk,
    ),
)
