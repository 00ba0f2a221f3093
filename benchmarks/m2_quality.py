"""Test error of M2 (Kingma et al. 2014) with 100 labels on MNIST, over several label draws.

    MINIVAE_DATA=path/to/data python benchmarks/m2_quality.py --jobs 3  # the bar: 3 draws, 80 epochs
    # the paper's J as written (beta_z = 1), the old recipe: 5 epochs at a constant 1e-3
    python benchmarks/m2_quality.py --beta-z 1 --lr 1e-3 --lr-schedule constant --epochs 5
    MINIVAE_DATA=path/to/data python benchmarks/m2_quality.py --throughput   # steps per second only
    # --resume continues each draw from the checkpoint in --out (a run that was stopped)

Protocol (quality bar: a mean test error of at most 10 %):
M2 with 784-500-(2 x 50) encoder q(z|x,y), 50-500-784 decoder p(x|y,z), 784-500-10
classifier q(y|x), softplus, Bernoulli pixels; the exact sum over y in U(x);
alpha = 0.1 N / N_labelled per labelled example (= 50 for 50,000 images and 100
labels). The KL of z is weighted beta_z = 6 in both bounds during training (--beta-z;
1 is the paper's J; lesson 06, Part 3, says why). MNIST's 60,000 training images split
into 50,000 for training and 10,000 for validation (by the draw's seed); N = 100
class-balanced labels drawn from the 50,000 by the same seed
(``minivae.data.labelled_subset``), the rest used without labels. Dynamically
binarized (a fresh draw every epoch); every unlabelled batch of 128 comes with a
labelled batch of all 100 labelled examples (``minivae.train``). Adam, lr 2e-3 on a
half cosine down to 0 over the 80 epochs. No early stopping: the error reported is
the one after the last epoch, on the 10,000 test images binarized once with a fixed
seed, predicted as argmax q(y|x) (the error after every epoch is listed too, for
the trend).

Prints one JSON line per draw (test and validation error, wall time), then one
summary line with the mean and standard deviation of the test error over the
draws, whether the bar held, and the exact command. Reference points: Kingma et
al. report 11.97 % +- 1.71 for M2 with 100 labels; Pyro's tutorial about 6.8 %.

--throughput measures training steps instead (model.loss + backward + Adam on an
unlabelled batch plus the labelled batch) for U(x) computed by tiling x C times
(``fast_sum_over_y=False``) and by the fast sum over y (the encoder's first layer
applied to x once, only the classes of nonzero weight evaluated), in alternating
order, and prints samples per second of each. Fresh weights by default; --weights
takes those of a trained M2 (a checkpoint.npz of this benchmark), whose confident
classifier leaves about 1.5 classes of 10 per image to evaluate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

import workers  # benchmarks/workers.py
from machine import machine  # benchmarks/machine.py

import minivae as mv
from minivae import backend as B
from minivae import data as D
from minivae.checkpoint import load_model
from minivae.metrics import classification_error
from minivae.models import SemiSupervisedVAE
from minivae.optim import Adam
from minivae.train import TrainConfig, train

TEST_BINARIZATION_SEED = 12345
BAR = 0.10  # mean test error over the draws
REFERENCES = {"kingma2014_m2_error": 0.1197, "kingma2014_m2_error_std": 0.0171,
              "pyro_tutorial_m2_error": 0.068}  # fmt: skip


def model_config(args) -> dict:
    config = {"kind": "m2", "x_dim": 784, "hidden": [args.hidden], "latent": args.latent,
              "activation": "softplus", "likelihood": "bernoulli", "n_classes": 10}  # fmt: skip
    if args.alpha is not None:
        config["alpha"] = args.alpha
    if args.beta_z != 1.0:
        config["beta"] = args.beta_z  # the weight of KL(q(z|x,y) || p(z)) in the training loss
    return config  # alpha None: train() passes the data sizes, alpha = 0.1 N / N_labelled


def command(argv) -> str:
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", "benchmarks/m2_quality.py", *args])


def run_draw(args, seed: int, x_test, y_test) -> dict:
    """Train one label draw, taking the test error after each epoch (the classifier alone:
    cheap, and it changes nothing in the run); the figure is the one after the last epoch."""
    out = os.path.join(args.out, f"draw_{seed}")
    x_dev = B.from_numpy(x_test, dtype=B.get_default_dtype())
    y_dev = B.from_numpy(y_test)
    config = TrainConfig(model=model_config(args), dataset="mnist", epochs=args.epochs,
                         batch_size=args.batch_size, optimizer="adam", lr=args.lr,
                         lr_schedule=args.lr_schedule, binarize="dynamic", n_val=args.n_val,
                         n_labelled=args.n_labelled, labelled_batch_size=args.labelled_batch_size,
                         seed=seed, progress=False)  # fmt: skip

    def test_error(model, epoch):
        with mv.no_grad():
            error = round(classification_error(model, x_dev, y_dev), 4)
        print(f"  draw {seed}: epoch {epoch}: test error {error:.4f}", file=sys.stderr, flush=True)
        return {"test_error": error}

    resume = args.resume and os.path.exists(os.path.join(out, "checkpoint.npz"))
    history = train(config, out, resume=resume, on_epoch=test_error,
                    log=lambda line: print(f"  draw {seed}: {line}", file=sys.stderr, flush=True))
    # summed over the epochs (training, validation and test passes): a resumed run counts all
    train_seconds = sum(row["seconds"] for row in history)
    test_errors = [row["test_error"] for row in history]
    last = history[-1]
    return {"draw_seed": seed, "n_labelled": args.n_labelled, "n_test": len(x_test),
            "epochs": args.epochs,
            "test_error": test_errors[-1], "val_error": last.get("val_error"),
            "alpha": last.get("train_alpha"), "beta_z": args.beta_z, "lr": args.lr,
            "lr_schedule": args.lr_schedule, "batch_size": args.batch_size,
            "labelled_batch_size": args.labelled_batch_size,
            "train_unlabelled_elbo": last.get("train_unlabelled_elbo"),
            "val_elbo": last.get("val_elbo"), "train_seconds": round(train_seconds, 1),
            "seconds_per_epoch": round(train_seconds / args.epochs, 1), "resumed": resume,
            "test_error_per_epoch": test_errors,
            "val_error_per_epoch": [round(r["val_error"], 4) for r in history if "val_error" in r],
            "date": time.strftime("%Y-%m-%d")}  # fmt: skip


def draw_with_test_set(args, seed: int) -> dict:
    """run_draw with the test images binarized once (in each worker process with --jobs)."""
    test = D.load_dataset("mnist", "test")
    x_test = D.binarize_fixed(test.images, seed=TEST_BINARIZATION_SEED)
    return run_draw(args, seed, x_test, test.labels.astype(B.np.int64))


def throughput(args) -> int:
    """Samples per second of training steps, tiled against the fast sum over y."""
    train_ds = D.load_dataset("mnist", "train")
    rng = B.np.random.default_rng(0)
    b, bl = args.batch_size, args.labelled_batch_size
    xu = B.from_numpy(D.binarize(train_ds.images[:b], rng), dtype=B.get_default_dtype())
    xl = B.from_numpy(D.binarize(train_ds.images[b : b + bl], rng), dtype=B.get_default_dtype())
    yl = B.from_numpy(train_ds.labels[b : b + bl].astype(B.np.int64))
    mv.manual_seed(0)
    models = {}
    for name, fast in (("tiled", False), ("fast", True)):
        model = SemiSupervisedVAE(**{k: v for k, v in model_config(args).items() if k != "kind"},
                                  n_labelled=args.n_labelled, n_total=50_000)  # fmt: skip
        if args.weights:
            model.load_state_dict(load_model(args.weights, expect_kind="m2")[0].state_dict())
        model.fast_sum_over_y = fast
        models[name] = (model, Adam(model.parameters(), lr=args.lr))

    def steps(name, n):
        model, opt = models[name]
        for _ in range(n):
            loss, _ = model.loss(D.Batch(xu, x_labelled=xl, y_labelled=yl))
            opt.zero_grad()
            loss.backward()
            opt.step()

    for name in models:
        steps(name, 3)  # warm-up
    times = {name: [] for name in models}
    order = list(models)
    for r in range(args.repeats):
        for name in order if r % 2 == 0 else order[::-1]:  # alternate: drift cancels
            t0 = time.perf_counter()
            steps(name, args.steps)
            times[name].append((time.perf_counter() - t0) / args.steps)
    row = {"batch_unlabelled": b, "batch_labelled": bl, "dtype": B.get_default_dtype().__name__
           if hasattr(B.get_default_dtype(), "__name__") else str(B.get_default_dtype()),
           "steps": args.steps, "repeats": args.repeats}  # fmt: skip
    for name, ts in times.items():
        t = statistics.median(ts)
        row[f"{name}_step_seconds"] = round(t, 4)
        row[f"{name}_samples_per_second"] = round((b + bl) / t, 1)
        row[f"{name}_unlabelled_per_second"] = round(b / t, 1)
    row["speedup"] = round(row["fast_samples_per_second"] / row["tiled_samples_per_second"], 3)
    row["weights"] = args.weights or "fresh"
    row.update(machine=machine(), command=command(args.argv))
    print(json.dumps(row), flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds of the label draws (each also seeds the split and the weights)")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--n-labelled", type=int, default=100)
    p.add_argument("--n-val", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=128, help="unlabelled examples per step")
    p.add_argument("--labelled-batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="cosine")
    p.add_argument("--beta-z", type=float, default=6.0,
                   help="weight of the KL of z in both bounds during training (1: the paper's J)")
    p.add_argument("--alpha", type=float, default=None,
                   help="classification weight per labelled example (default 0.1 N / N_labelled)")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--latent", type=int, default=50)
    p.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    p.add_argument("--resume", action="store_true",
                   help="continue each draw from the checkpoint in --out, where there is one")
    p.add_argument("--jobs", type=int, default=1,
                   help="draws trained at once, each in its own process with one BLAS thread")
    p.add_argument("--throughput", action="store_true", help="measure training steps only")
    p.add_argument("--steps", type=int, default=10, help="--throughput: timed steps per repeat")
    p.add_argument("--repeats", type=int, default=5, help="--throughput: repeats per version")
    p.add_argument("--weights", default=None,
                   help="--throughput: a trained M2's checkpoint.npz (default: fresh weights)")
    args = p.parse_args(argv)
    args.argv = argv
    if args.throughput:
        return throughput(args)

    args.out = args.out or tempfile.mkdtemp(prefix="m2-quality-")
    t0 = time.perf_counter()
    if args.jobs > 1:  # one process per draw, each with one BLAS thread (read at its start)
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"
        with workers.pool(args.jobs) as pool:
            rows = list(pool.map(draw_with_test_set, [args] * len(args.draws), args.draws))
    else:
        rows = [draw_with_test_set(args, seed) for seed in args.draws]
    errors = []
    for row in rows:
        errors.append(row["test_error"])
        print(json.dumps(row), flush=True)
    mean = statistics.fmean(errors)
    std = statistics.stdev(errors) if len(errors) > 1 else 0.0
    summary = {"summary": "m2_100_labels", "draws": args.draws, "test_errors": errors,
               "mean_test_error": round(mean, 4), "std_test_error": round(std, 4),
               "bar": BAR, "bar_held": mean <= BAR, "n_test": rows[0]["n_test"],
               "wall_seconds": round(time.perf_counter() - t0, 1), **REFERENCES,
               "machine": machine(), "date": time.strftime("%Y-%m-%d"),
               "command": command(argv)}  # fmt: skip
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
