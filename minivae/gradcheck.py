"""Numerical gradient checks, for the library's tests, the lessons, and learners' own code.

    from minivae.gradcheck import gradcheck
    report = gradcheck(lambda x, w: (x @ w).sum(), [x, w])
    assert report.ok, report

Everything runs in float64 with central differences,
    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),
compared with what ``backward`` gives. Small inputs get the full Jacobian, one
column per input element and one row per output element. Large inputs get
random projections: for random directions u (input) and v (output),
    v^T J u  ~  (v . f(x + eps u) - v . f(x - eps u)) / (2 eps),
which any wrong entry of J would disturb. The report names the worst element:
which input, which index, the analytic and numeric values, the relative error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from minivae import backend as B
from minivae.tensor import Tensor


@dataclass
class Mismatch:
    """One compared entry: where it is, both values, and their relative error."""

    input: int  # which input (position in the list)
    index: tuple  # element index in that input (full mode); () in projection mode
    output_index: tuple  # element index in the output (full mode)
    analytic: float
    numeric: float
    rel_error: float
    name: str = ""

    def describe(self) -> str:
        where = f"input {self.input}" + (f" ({self.name})" if self.name else "")
        bad = [side for side, v in (("analytic", self.analytic), ("numeric", self.numeric))
               if not math.isfinite(v)]  # fmt: skip
        note = (f" ({' and '.join(bad)} not finite: a NaN or an infinity in "
                f"{'the forward' if 'numeric' in bad else 'the backward'})" if bad else "")
        if self.index:
            where += f", element {self.index}"
        if self.output_index:
            where += f", output element {self.output_index}"
        return (
            f"{where}: analytic {self.analytic:.10g}, numeric {self.numeric:.10g}, "
            f"relative error {self.rel_error:.3g}{note}"
        )


@dataclass
class GradcheckReport:
    """Did the gradients match, and the worst entry compared."""

    ok: bool
    mode: str
    rtol: float
    atol: float
    checked: int
    worst: Mismatch | None
    failures: list = field(default_factory=list)

    def __bool__(self):
        return self.ok

    def __str__(self):
        verdict = "passed" if self.ok else "FAILED"
        lines = [f"gradcheck {verdict} ({self.mode}, {self.checked} entries, rtol {self.rtol:g})"]
        if self.worst is not None:
            lines.append("  worst: " + self.worst.describe())
        for bad in self.failures[1:4]:
            lines.append("  also:  " + bad.describe())
        if len(self.failures) > 4:
            lines.append(f"  ... and {len(self.failures) - 4} more")
        return "\n".join(lines)


def _entry_ok(e: Mismatch, rtol: float, atol: float) -> bool:
    """Both values finite, and |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|)."""
    if not (math.isfinite(e.analytic) and math.isfinite(e.numeric)):
        return False  # NaN compares False with everything: it must fail on its own
    return abs(e.analytic - e.numeric) <= atol + rtol * max(abs(e.analytic), abs(e.numeric))


def _rel_error(a: float, n: float, atol: float) -> float:
    """|a - n| / max(|a|, |n|), or the plain difference where both are below atol."""
    scale = max(abs(a), abs(n))
    return abs(a - n) / scale if scale > atol else abs(a - n)


def _as_float64_inputs(inputs):
    """Float64 leaf tensors for the floating inputs (the ones checked); others pass through."""
    tensors, checked = [], []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else x
        if not hasattr(data, "dtype"):
            data = B.xp.asarray(data)
        if data.dtype.kind == "f":
            t = Tensor(B.xp.array(data, dtype=B.xp.float64), requires_grad=True)
            checked.append(len(tensors))
        else:
            t = Tensor(data)
        tensors.append(t)
    return tensors, checked


def _evaluate(fn, tensors):
    out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: the function must return a Tensor, got {type(out).__name__}")
    return out


def gradcheck(
    fn,
    inputs,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    mode: str = "auto",
    n_projections: int = 8,
    max_full: int = 400,
    seed: int = 0,
    names=None,
) -> GradcheckReport:
    """Compare backward() with central differences for every floating input of ``fn``.

    fn: takes Tensors (in the order of ``inputs``), returns a Tensor of any shape;
        it must be deterministic (fix any noise outside it).
    mode: "full" (Jacobian entry by entry), "projection", or "auto" (full when the
        inputs and the output have at most ``max_full`` elements each).
    An entry passes when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|),
    both finite: a NaN or an infinity on either side is a failure, never a pass.
    """
    if mode not in ("auto", "full", "projection"):
        raise ValueError(f"gradcheck: mode must be 'auto', 'full' or 'projection', got {mode!r}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"gradcheck: eps, the step of the central differences, must be a "
                         f"finite number > 0, got {eps}")  # fmt: skip
    if isinstance(inputs, Tensor) or hasattr(inputs, "shape"):
        raise TypeError("gradcheck: inputs is a list of the function's inputs, even for one: "
                        "gradcheck(fn, [x])")  # fmt: skip
    names = list(names) if names is not None else [""] * len(inputs)
    with B.set_default_dtype("float64"):
        tensors, checked = _as_float64_inputs(inputs)
        if not checked:
            raise ValueError("gradcheck: no floating-point input to check")
        out = _evaluate(fn, tensors)
        n_in = max(tensors[k].size for k in checked)
        if mode == "auto":
            mode = "full" if n_in <= max_full and out.size <= max_full else "projection"
        if mode == "full":
            entries = _full(fn, tensors, checked, out, eps, atol)
        else:
            entries = _projection(fn, tensors, checked, out, eps, atol, n_projections, seed)
    for e in entries:
        e.name = names[e.input] if e.input < len(names) else ""
    failures = [e for e in entries if not _entry_ok(e, rtol, atol)]
    failures.sort(key=lambda e: -e.rel_error if math.isfinite(e.rel_error) else -math.inf)
    worst = failures[0] if failures else (max(entries, key=lambda e: e.rel_error) if entries else None)
    return GradcheckReport(not failures, mode, rtol, atol, len(entries), worst, failures)


def assert_gradcheck(fn, inputs, **kwargs) -> GradcheckReport:
    """gradcheck, raising AssertionError with the report when it fails."""
    report = gradcheck(fn, inputs, **kwargs)
    if not report.ok:
        raise AssertionError(str(report))
    return report


def _analytic_vjp(fn, tensors, checked, v):
    """Gradients of sum(v * f(x)) with respect to each checked input, by backward()."""
    for t in tensors:
        t.grad = None
    out = _evaluate(fn, tensors)
    if not out.requires_grad:
        return [B.xp.zeros_like(tensors[k].data) for k in checked]
    out.backward(B.xp.asarray(v, dtype=out.dtype).reshape(out.shape))
    grads = []
    for k in checked:
        g = tensors[k].grad
        grads.append(B.xp.zeros_like(tensors[k].data) if g is None else B.xp.asarray(g))
    return grads


def _value(fn, tensors):
    from minivae.tensor import no_grad

    with no_grad():
        return _evaluate(fn, tensors).data


def _full(fn, tensors, checked, out, eps, atol):
    xp = B.xp
    n_out = out.size
    # analytic Jacobian rows: one backward per output element
    rows = []
    for j in range(n_out):
        v = xp.zeros(n_out, dtype=xp.float64)
        v[j] = 1.0
        rows.append(_analytic_vjp(fn, tensors, checked, v))
    entries = []
    for pos, k in enumerate(checked):
        x = tensors[k].data
        flat = x.reshape(-1)  # a view: perturb in place
        for i in range(x.size):
            old = float(flat[i])
            flat[i] = old + eps
            f_plus = _value(fn, tensors).reshape(-1).copy()
            flat[i] = old - eps
            f_minus = _value(fn, tensors).reshape(-1).copy()
            flat[i] = old
            numeric_col = (f_plus - f_minus) / (2.0 * eps)  # (n_out,)
            idx = tuple(int(a) for a in B.np.unravel_index(i, x.shape))
            for j in range(n_out):
                a = float(rows[j][pos].reshape(-1)[i])
                n = float(numeric_col[j])
                out_idx = tuple(int(b) for b in B.np.unravel_index(j, out.shape)) if out.shape else ()
                entries.append(Mismatch(k, idx, out_idx, a, n, _rel_error(a, n, atol)))
    return entries


def _projection(fn, tensors, checked, out, eps, atol, n_projections, seed):
    xp = B.xp
    gen = B.np.random.default_rng(seed)
    entries = []
    for _ in range(n_projections):
        v = xp.asarray(gen.standard_normal(out.size))  # output direction
        grads = _analytic_vjp(fn, tensors, checked, v)
        for pos, k in enumerate(checked):
            x = tensors[k].data
            u = xp.asarray(gen.standard_normal(x.shape))  # input direction, each element moves by ~eps
            analytic = float((grads[pos] * u).sum())  # v^T J u
            original = x.copy()
            x += eps * u
            f_plus = _value(fn, tensors).reshape(-1).copy()
            x[...] = original - eps * u
            f_minus = _value(fn, tensors).reshape(-1).copy()
            x[...] = original
            # difference first, then project: no cancellation between large sums
            numeric = float(((f_plus - f_minus) * v).sum()) / (2.0 * eps)
            entries.append(Mismatch(k, (), (), analytic, numeric, _rel_error(analytic, numeric, atol)))
    return entries
