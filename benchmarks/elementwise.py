"""Timings behind single elementwise decisions: each fast form against the form it replaced.

    python benchmarks/elementwise.py            # 128 x 784 (a batch of logits), float32 and float64

Prints one JSON line per (dtype, pair): best-of-repeats milliseconds per call of the
replaced form and of minivae's form, the speed-up, the largest relative difference, and the
minor page faults per call of each form (glibc may hand freed memory back to the system
after a call, and the next call then faults it in again page by page: a few thousand faults
cost milliseconds, so a row with many timed the allocator rather than the arithmetic);
with them the Bernoulli log-likelihood's training forward (the rows' sums and e^-|l|): with
a log per pixel (the form it replaced) against the logs of products of 16 pixels, with the
log's correction term per pixel (the form it replaced) against without, and on blocks of 128
rows, a variant the library does not use, against the whole batch at once. ``--kept-memory``
keeps freed memory in the process first, as the training loop does
(``minivae.memory.keep_freed_memory``), so that no row times the allocator.
Also one Adam step over the parameters of the 784-400-20 VAE: the 13-pass update it
replaced, a blockwise variant, and the subnormal flush at every step (the form the flush
every ``FLUSH_EVERY`` steps replaced), against minivae's fast Adam (``minivae.fast.Adam``,
whatever ``MINIVAE_FAST`` says; the largest absolute difference of the weights after ten
steps from the same start). And the total correlation of a batch of B = 128 and 512 codes of
10 units (the β-TCVAE's term), forward and backward: the eight plain ops against
``minivae.fast.TotalCorrelation`` (the largest difference of the three gradients, relative
to the largest gradient).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=2, default=[128, 784])
    p.add_argument("--number", type=int, default=200, help="calls per repeat")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--kept-memory", action="store_true",
                   help="keep freed memory in the process, as the training loop does")  # fmt: skip
    args = p.parse_args(argv)

    import numpy as np

    if args.kept_memory:
        from minivae.memory import keep_freed_memory

        keep_freed_memory()

    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        logits = (rng.standard_normal(args.shape) * 3).astype(dtype)
        e = np.exp(-np.abs(logits))  # e^-|l| in (0, 1], as the Bernoulli likelihood makes it
        for name, (old, new) in pairs(np, logits, e).items():
            f_old = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t_old = min(timeit.repeat(old, number=args.number, repeat=args.repeats)) / args.number
            f_new = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t_new = min(timeit.repeat(new, number=args.number, repeat=args.repeats)) / args.number
            f_end = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            calls = args.number * args.repeats
            a, b = old(), new()
            rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), np.finfo(dtype).tiny)))
            print(json.dumps({
                "dtype": dtype, "shape": args.shape, "what": name,
                "replaced_ms": round(t_old * 1e3, 4), "minivae_ms": round(t_new * 1e3, 4),
                "speedup": round(t_old / t_new, 2), "max_rel_difference": float(f"{rel:.3g}"),
                "replaced_page_faults_per_call": round((f_new - f_old) / calls, 1),
                "minivae_page_faults_per_call": round((f_end - f_new) / calls, 1),
            }), flush=True)  # fmt: skip
    for dtype in ("float32", "float64"):
        for name, (old, new, compare) in adam_pairs(np, dtype).items():
            # 24 steps a repeat: a whole number of the fast Adam's flush periods (8 steps)
            t_old = min(timeit.repeat(old, number=24, repeat=args.repeats)) / 24
            t_new = min(timeit.repeat(new, number=24, repeat=args.repeats)) / 24
            print(json.dumps({
                "dtype": dtype, "shape": "784-400-20 VAE parameters", "what": name,
                "replaced_ms": round(t_old * 1e3, 4), "minivae_ms": round(t_new * 1e3, 4),
                "speedup": round(t_old / t_new, 2), "max_abs_weight_difference": float(f"{compare():.3g}"),
            }), flush=True)  # fmt: skip
    for dtype in ("float32", "float64"):
        for batch in (128, 512):
            old, new, compare = tc_pair(np, dtype, batch)
            t_old = min(timeit.repeat(old, number=5, repeat=args.repeats)) / 5
            t_new = min(timeit.repeat(new, number=5, repeat=args.repeats)) / 5
            print(json.dumps({
                "dtype": dtype, "shape": [batch, 10], "what": "total correlation, forward and backward",
                "replaced_ms": round(t_old * 1e3, 4), "minivae_ms": round(t_new * 1e3, 4),
                "speedup": round(t_old / t_new, 2), "max_rel_gradient_difference": float(f"{compare():.3g}"),
            }), flush=True)  # fmt: skip
    return 0


def tc_pair(np, dtype, batch):
    """(plain ops' step, the fast op's step, relative gradient difference) for one batch of codes."""
    from minivae import distributions as dist
    from minivae import fast
    from minivae.tensor import Tensor

    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((batch, 10)).astype(dtype) for _ in range(3)]  # z, mu, log_var

    def step(flag):
        def run():
            with fast.set_enabled(flag):
                z, mu, log_var = (Tensor(a, requires_grad=True) for a in arrays)
                dist.total_correlation(z, dist.DiagonalGaussian(mu, log_var)).sum().backward()
            return [z.grad, mu.grad, log_var.grad]

        return run

    def compare():
        plain, quick = step(False)(), step(True)()
        return max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(plain, quick))

    return step(False), step(True), compare


def pairs(np, logits, e) -> dict:
    """{what: (the replaced form, minivae's form)}, each a function of no arguments."""
    from minivae.fast import (
        _bernoulli_rows,
        _bernoulli_rows_per_pixel,
        log1p_by_log,
        one_plus_and_correction,
        sigmoid_from_exp,
        sum_log_by_products,
    )

    def masked_sigmoid():  # the replaced form: a masked multiply
        sig = np.reciprocal(e + 1.0)
        np.multiply(sig, e, out=sig, where=logits < 0)
        return sig

    x = (np.random.default_rng(3).random(logits.shape) < 0.2).astype(logits.dtype)  # binary pixels

    def bernoulli_in_row_blocks():  # the variant the library does not use: 128-row blocks
        out, kept = np.empty(logits.shape[0], logits.dtype), []  # (B,); e^-|l| of each block
        for r in range(0, logits.shape[0], 128):
            rows = slice(r, r + 128)
            out[rows], e_rows = _bernoulli_rows(logits[rows], x[rows], keep_e=True)
            kept.append(e_rows)  # as a backward would keep them
        return out

    def bernoulli_with_correction():  # the replaced form: log(1 + e) = log(u) + c per pixel
        e_ = np.exp(-np.abs(logits))
        u, c = one_plus_and_correction(e_)
        log_u = sum_log_by_products(u)
        xl = np.greater(logits, 0, out=u)
        np.subtract(x, xl, out=xl)
        xl *= logits
        xl -= c
        return xl.sum(axis=-1) - log_u

    return {
        "log(1 + e^-|l|)": (lambda: np.log1p(e), lambda: log1p_by_log(e)),
        "sigmoid(l) from e^-|l|": (masked_sigmoid, lambda: sigmoid_from_exp(logits, e)),
        "Bernoulli log-likelihood, training forward: 128-row blocks vs whole": (
            bernoulli_in_row_blocks,
            lambda: _bernoulli_rows(logits, x, keep_e=True)[0],
        ),
        "Bernoulli log-likelihood, training forward: a log per 16 pixels vs per pixel": (
            lambda: _bernoulli_rows_per_pixel(logits, x, keep_e=True)[0],  # the replaced form
            lambda: _bernoulli_rows(logits, x, keep_e=True)[0],
        ),
        "Bernoulli log-likelihood, training forward: the log's correction term vs without": (
            bernoulli_with_correction,
            lambda: _bernoulli_rows(logits, x, keep_e=True)[0],
        ),
    }


VAE_SHAPES = [(784, 400), (400,), (400, 40), (40,), (20, 400), (400,), (400, 784), (784,)]


def adam_pairs(np, dtype) -> dict:
    """{what: (replaced step, minivae's step, largest weight difference after 10 steps)}.

    Each step moves a weight by about lr = 1e-3; the weights are of order 1.
    """
    from minivae import backend as B
    from minivae import fast
    from minivae.tensor import Tensor

    rng = np.random.default_rng(1)
    start = [rng.standard_normal(s).astype(dtype) for s in VAE_SHAPES]
    grads = [rng.standard_normal(s).astype(dtype) for s in VAE_SHAPES]

    class FlushEveryStep(fast.Adam):
        """The form the library replaced: M's subnormal entries flushed after every update."""

        def update(self, k, w, g):
            fast.adam_on_decayed_sums(w, g, self.g_sum[k], self.g2_sum[k], self.scratch[k],
                                      self.b1, self.b2, self._step_size, self._eps)  # fmt: skip
            fast.flush_subnormal(self.g_sum[k], self.scratch[k], self.subnormal[k])

    class BlockwiseAdam(fast.Adam):
        """The variant the library does not use: the same update on cache-sized blocks."""

        def update(self, k, w, g):
            arrays = [a.reshape(-1) for a in (w, g, self.g_sum[k], self.g2_sum[k], self.scratch[k])]
            for s in range(0, w.size, self.block):
                block = [a[s : s + self.block] for a in arrays]
                fast.adam_on_decayed_sums(*block, self.b1, self.b2, self._step_size, self._eps)
            fast.flush_subnormal(self.g_sum[k], self.scratch[k], self.subnormal[k])

    def minivae_adam(block, kind=fast.Adam):
        """(one step, the weights) of minivae's fast Adam (in blocks of ``block`` elements if
        given, or of another kind) over copies of the start."""
        with B.set_default_dtype(dtype):
            params = [Tensor(w.copy(), requires_grad=True) for w in start]
        for p, g in zip(params, grads):
            p.grad = g
        if block is None:
            opt = kind(params)
        else:
            opt = BlockwiseAdam(params)
            opt.block = block
        return opt.step, [p.data for p in params]

    def thirteen_passes():
        """(one step, the weights) of the update minivae used before: moments m and v, 13 passes."""
        weights = [w.copy() for w in start]
        ms, vs = [np.zeros_like(w) for w in start], [np.zeros_like(w) for w in start]
        tmps = [np.empty_like(w) for w in start]
        b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-3
        t = [0]

        def step():
            t[0] += 1
            bc1, bc2 = 1.0 - b1 ** t[0], 1.0 - b2 ** t[0]
            for w, g, m, v, tmp in zip(weights, grads, ms, vs, tmps):
                m *= b1
                np.multiply(g, 1.0 - b1, out=tmp)
                m += tmp  # m <- b1 m + (1 - b1) g
                v *= b2
                np.multiply(g, g, out=tmp)
                tmp *= 1.0 - b2
                v += tmp  # v <- b2 v + (1 - b2) g^2
                np.sqrt(v, out=tmp)
                tmp *= 1.0 / np.sqrt(bc2)
                tmp += eps
                np.divide(m, tmp, out=tmp)
                tmp *= lr / bc1
                w -= tmp

        return step, weights

    def difference(make_a, make_b):
        """Ten steps of each from the same start: the largest absolute weight difference."""
        def compare():
            (step_a, w_a), (step_b, w_b) = make_a(), make_b()
            for _ in range(10):
                step_a()
                step_b()
            return max(float(np.max(np.abs(a - b))) for a, b in zip(w_a, w_b))
        return compare

    whole = minivae_adam(None)[0]
    return {
        "Adam: 10 passes on decayed sums vs 13 on moments": (
            thirteen_passes()[0], whole, difference(thirteen_passes, lambda: minivae_adam(None))),
        "Adam: 65536-element blocks vs whole arrays": (
            minivae_adam(65536)[0], whole,
            difference(lambda: minivae_adam(65536), lambda: minivae_adam(None))),
        f"Adam: the subnormal flush every step vs every {fast.FLUSH_EVERY} steps": (
            minivae_adam(None, FlushEveryStep)[0], whole,
            difference(lambda: minivae_adam(None, FlushEveryStep), lambda: minivae_adam(None))),
    }


if __name__ == "__main__":
    sys.exit(main())
