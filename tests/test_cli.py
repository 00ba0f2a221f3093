"""The minivae command: every subcommand end to end on the built-in data, and its errors.

Every failure must reach the user as a message saying what was wrong and what to do,
with a non-zero exit code, never as a traceback (``--debug`` shows one). The bad inputs
below are the ones a new user tries: bad option values, options that do not apply,
run folders in use, diverging runs, bad files, interrupts and exhausted memory.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivae import cli
from minivae.checkpoint import read_checkpoint
from minivae.cli import build_parser, main
from minivae.models import MODELS
from minivae.tensor import is_grad_enabled

SUBCOMMANDS = ("train", "eval", "sample", "datasets", "download")
ROOT = Path(__file__).resolve().parent.parent
# a tiny run: one batch of 300 per epoch, a few seconds
TINY = ["--dataset", "fashion-mnist-builtin", "--hidden", "8", "--latent", "2",
        "--batch-size", "250", "--n-val", "50", "--limit-train", "300", "--no-progress"]  # fmt: skip


def run(capsys, *argv) -> tuple:
    """(exit code, stdout, stderr) of ``minivae argv``; argparse's exits count as codes."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as done:
        code = done.code
    out, err = capsys.readouterr()
    return code, out, err


def strict_json(path) -> dict:
    """A file's JSON, read as strictly as other tools read it: NaN and Infinity refused."""

    def refuse(token):
        raise ValueError(f"{path} holds {token}, which is not JSON")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_documents_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    sub = build_parser().subcommands[command]
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in text, f"{command} --help does not show {flag}"
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help text"


def test_train_help_says_how_runs_are_kept_and_what_may_change_on_resume(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--resume (continue it) or --overwrite (replace it)" in text
    for flag in cli.RESUME_MAY_CHANGE:
        assert flag in text.split("except", 1)[1], flag
    assert "Exit codes" in text and "130 interrupted" in text


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny cvae run through the command, shared by the tests below."""
    out = tmp_path_factory.mktemp("runs")
    code = main(["train", "cvae", "--dataset", "fashion-mnist-builtin", "--hidden", "32",
                 "--latent", "3", "--epochs", "1", "--batch-size", "100", "--n-val", "500",
                 "--limit-train", "1500", "--out", str(out), "--name", "tiny", "--no-progress",
                 "--nll-samples", "5"])  # fmt: skip
    assert code == 0
    return out / "tiny"


def test_train_writes_the_run_folder(trained_run):
    for name in ("config.json", "metrics.jsonl", "checkpoint.npz", "summary.json",
                 "training_curves.png", "reconstructions.png", "samples.png"):  # fmt: skip
        assert (trained_run / name).exists(), name
    summary = strict_json(trained_run / "summary.json")
    assert summary["epochs"] == 1 and summary["status"] == "completed"
    assert summary["test_nll_k5"] > 0  # nats per example: a negative log-likelihood of images
    modes = {(trained_run / n).stat().st_mode & 0o777
             for n in ("config.json", "metrics.jsonl", "checkpoint.npz", "summary.json",
                       "samples.png")}  # fmt: skip
    assert len(modes) == 1, modes  # every run file is written the same way


def test_eval_prints_elbo_and_nll(trained_run, capsys):
    code, out, _ = run(capsys, "eval", trained_run / "checkpoint.npz", "--nll-samples", "20",
                       "--limit", "200")  # fmt: skip
    assert code == 0
    out = json.loads(out.strip().splitlines()[-1])
    assert out["n_examples"] == 200
    # the importance-sampled log-likelihood is at least the ELBO (on average)
    assert out["test_nll_k20"] <= -out["test_elbo"] + 0.5


def test_eval_names_its_numbers_by_the_split(trained_run, capsys):
    code, out, _ = run(capsys, "eval", trained_run / "checkpoint.npz", "--split", "train",
                       "--nll-samples", "2", "--limit", "50")  # fmt: skip
    assert code == 0
    out = json.loads(out.strip().splitlines()[-1])
    assert {"train_elbo", "train_nll_k2"} <= set(out) and not any(k.startswith("test_") for k in out)


def test_eval_shows_a_progress_bar_of_images_and_time_left(trained_run, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_show_progress", lambda args: True)  # as on a terminal
    code, out, err = run(capsys, "eval", trained_run / "checkpoint.npz", "--nll-samples", "3",
                         "--limit", "30", "--batch-size", "10")  # fmt: skip
    assert code == 0 and json.loads(out)["n_examples"] == 30
    assert "/30 images [" in err and "image/s" in err and "<" in err  # done/total, rate, time left
    monkeypatch.setattr(cli, "_show_progress", lambda args: False)
    assert "/30 [" not in run(capsys, "eval", trained_run / "checkpoint.npz", "--nll-samples",
                              "3", "--limit", "30")[2]  # fmt: skip


def test_the_importance_sampling_reports_each_chunk_for_the_bar(trained_run):
    from minivae.checkpoint import load_model
    from minivae.metrics import importance_sampled_log_likelihood

    model, _ = load_model(trained_run / "checkpoint.npz")
    chunks: list = []
    x = np.zeros((3, 784), dtype=np.float32)
    importance_sampled_log_likelihood(model, x, k=5, chunk=2, y=np.arange(3), on_chunk=chunks.append)
    assert chunks == [2, 2, 1]


def test_sample_writes_a_new_file_and_says_when_it_replaces_one(trained_run, capsys, tmp_path):
    before = (trained_run / "samples.png").read_bytes()
    code, out, _ = run(capsys, "sample", trained_run / "checkpoint.npz", "-n", "8")
    written = trained_run / "sample-n8-seed0.png"
    assert code == 0 and out.strip() == f"wrote {written}"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (trained_run / "samples.png").read_bytes() == before  # training's figure stays
    code, out, _ = run(capsys, "sample", trained_run / "checkpoint.npz", "-n", "8")
    assert code == 0 and "replaced the file of that name" in out
    target = tmp_path / "s.png"
    code, _, _ = run(capsys, "sample", trained_run / "checkpoint.npz", "-n", "16", "--label", "3",
                     "--out", target)  # fmt: skip
    assert code == 0 and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run(capsys, "sample", trained_run / "checkpoint.npz", "-n", "4", "--label",
                       "3", "--out", tmp_path)  # fmt: skip
    assert code == 0 and (tmp_path / "sample-n4-seed0-label3.png").exists()
    code, _, err = run(capsys, "sample", trained_run / "checkpoint.npz", "--label", "12")
    assert code == 2
    assert "--label 12: ConditionalVAE: label 12 is outside the valid range [0, 10)" in err
    code, out, err = run(capsys, "sample", trained_run / "checkpoint.npz", "-n", "6", "--label",
                         "3.0", "--out", tmp_path)  # fmt: skip
    assert code == 0, err  # a whole number written as 3.0 is class 3
    assert (tmp_path / "sample-n6-seed0-label3.png").exists()


def test_sample_out_folders_and_paths_that_cannot_take_the_image(trained_run, capsys, tmp_path,
                                                                 monkeypatch):
    ckpt = trained_run / "checkpoint.npz"
    code, _, err = run(capsys, "sample", ckpt, "-n", "4", "--out", f"{tmp_path / 'new'}/")
    assert code == 0, err  # a folder that does not exist yet (the trailing /) is created
    assert (tmp_path / "new" / "sample-n4-seed0.png").exists()
    code, _, err = run(capsys, "sample", ckpt, "-n", "4", "--out", tmp_path / "s.jpg")
    assert code == 2 and "give a path ending in .png, or a folder (end it with /)" in err
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "sample", ckpt, "-n", "4", "--out", tmp_path / "afile" / "s.png")
    assert code == 2 and "afile is a file, not a folder" in err
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)  # as a read-only folder
    code, _, err = run(capsys, "sample", ckpt, "-n", "4", "--out", tmp_path / "t.png")
    assert code == 2 and "cannot write into" in err and not (tmp_path / "t.png").exists()
    monkeypatch.undo()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("minivae.train.sample_figure", refuse)
    code, _, err = run(capsys, "sample", ckpt, "-n", "4", "--out", tmp_path / "u.png")
    assert code == 1 and "cannot write" in err and "(Permission denied)" in err and ".tmp" not in err


def test_train_out_under_a_file_is_refused_before_any_work(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "train", "vae", *TINY, "--out", tmp_path / "afile" / "runs")
    assert code == 2 and "afile is a file, not a folder" in err
    assert (tmp_path / "afile").read_text() == "x"


def test_datasets_lists_every_dataset(capsys):
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    for name in ("mnist", "fashion-mnist", "fashion-mnist-builtin", "shapes"):
        assert name in text
    assert "built in" in text


def test_a_reader_that_goes_away_gets_no_error_message():
    """``minivae datasets | head -1``: stdout closed before the command writes."""
    child = subprocess.Popen([sys.executable, "-m", "minivae", "datasets"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    child.stdout.close()  # closed long before the interpreter has started
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 1 and err == "", err


def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "minivae", "--help"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0
    for command in SUBCOMMANDS:
        assert command in done.stdout


def _command(*argv, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("MINIVAE_DEVICE", "MINIVAE_FAST")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-m", "minivae", *map(str, argv)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_an_environment_setting_that_cannot_be_honoured_is_one_line_and_exit_2(tmp_path):
    """MINIVAE_DEVICE or MINIVAE_FAST with a bad value: the commands that compute refuse in
    one line before any work; --help and the commands that do not compute still run."""
    out = tmp_path / "runs"
    device = _command("train", "vae", *TINY, "--out", out, MINIVAE_DEVICE="tpu")
    assert device.returncode == 2 and device.stdout == "", device.stderr
    assert device.stderr == ("minivae train: error: MINIVAE_DEVICE='tpu' is not a device: choose "
                             "one of cpu, gpu, or unset it; or add --device cpu\n")  # fmt: skip
    switch = _command("eval", tmp_path / "nothing", MINIVAE_FAST="yes")
    assert switch.returncode == 2
    assert switch.stderr == ("minivae eval: error: MINIVAE_FAST='yes': set it to 1 (the fast "
                             "paths, the default) or 0 (plain ops only)\n")  # fmt: skip
    assert not out.exists()
    for argv in (["--help"], ["datasets"], ["train", "--help"]):
        done = _command(*argv, MINIVAE_DEVICE="tpu", MINIVAE_FAST="yes")
        assert done.returncode == 0 and "Traceback" not in done.stderr, (argv, done.stderr)


def test_device_option_overrides_an_unusable_minivae_device(tmp_path):
    done = _command("train", "vae", *TINY, "--epochs", "1", "--device", "cpu", "--out", tmp_path,
                    MINIVAE_DEVICE="gpu" if not _has_gpu() else "tpu")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "vae-fashion-mnist-builtin" / "checkpoint.npz").is_file()


def _has_gpu() -> bool:
    from minivae import backend

    with backend.use_gpu_module(None):  # the real CuPy, also in a --gpu-standin pass
        return backend.gpu_available()


# ----------------------------------------------------------------------------- bad option values

BAD_VALUES = [
    (["train", "vae", "--lr-decay", "-1"], "argument --lr-decay: must be a number > 0, got '-1'"),
    (["train", "vae", "--lr-schedule", "exponential", "--lr-decay", "0"],
     "argument --lr-decay: must be a number > 0, got '0'"),
    (["train", "vae", "--kl-warmup", "nan"], "argument --kl-warmup: expected a finite number"),
    (["train", "vae", "--kl-warmup", "-2"], "argument --kl-warmup: must be a number >= 0"),
    (["train", "vae", "--lr", "inf"], "argument --lr: expected a finite number, got 'inf'"),
    (["train", "vae", "--lr", "0"], "argument --lr: must be a number > 0, got '0'"),
    (["train", "vae", "--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (["train", "vae", "--nll-samples", "-5"], "argument --nll-samples: must be a whole number >= 0"),
    (["train", "vae", "--seed", "-1"], "argument --seed: must be a whole number >= 0, got '-1'"),
    (["train", "vae", "--seed", "1.5"], "argument --seed: expected a whole number, got '1.5'"),
    (["train", "vae", "--epochs", "0"], "argument --epochs: must be a whole number >= 1"),
    (["train", "vae", "--batch-size", "-3"], "argument --batch-size: must be a whole number >= 1"),
    (["train", "vae", "--n-val", "-1"], "argument --n-val: must be a whole number >= 0"),
    (["train", "vae", "--clip-grad", "0"], "argument --clip-grad: must be a number > 0"),
    (["train", "vae", "--beta", "-1"], "argument --beta: must be a number >= 0"),
    (["train", "vae", "--beta", "nan"], "argument --beta: expected a finite number"),
    (["train", "vae", "--likelihood", "gaussian", "--sigma", "0"],
     "argument --sigma: must be a number > 0"),
    (["train", "m2", "--alpha=-inf"], "argument --alpha: expected a finite number"),
    (["train", "vae", "--hidden", "400,x"], "argument --hidden: expected sizes like '400'"),
    (["train", "vae", "--hidden", "0"], "argument --hidden: layer sizes must be positive"),
    (["train", "vae", "--hidden", ","], "argument --hidden: expected sizes like '400'"),
    (["train", "vae", "--hidden", "400,"], "argument --hidden: expected sizes like '400'"),
    (["train", "vae", "--latent", "0"], "argument --latent: must be a whole number >= 1"),
    (["train", "m2", "--labels", "0"], "argument --labels: must be a whole number >= 1"),
    (["train", "vae", "--name", "../x"], "argument --name: a run name is one folder name inside"),
    (["train", "vae", "--name", "/tmp/x"], "argument --name: a run name is one folder name"),
    (["train", "vae", "--name", "a/b"], "argument --name: a run name is one folder name"),
    (["train", "vae", "--name", ".."], "argument --name: a run name is one folder name"),
    (["train", "vae", "--name", ""], "argument --name: a run name is one folder name"),
    (["train", "gan"], "argument model: invalid choice: 'gan'"),
    (["train", "vae", "--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
    (["train", "vae", "--resume", "--overwrite"],
     "argument --overwrite: not allowed with argument --resume"),
    (["eval", "x.npz", "--nll-samples", "0"], "argument --nll-samples: must be a whole number >= 1"),
    (["eval", "x.npz", "--limit", "-1"], "argument --limit: must be a whole number >= 1"),
    (["eval", "x.npz", "--seed", "-1"], "argument --seed: must be a whole number >= 0"),
    (["sample", "x.npz", "-n", "0"], "argument -n: must be a whole number >= 1"),
    (["sample", "x.npz", "-n", "1000000000"], "argument -n: at most 4096 samples fit a readable"),
    (["sample", "x.npz", "--label", "nan"], "argument --label: expected a finite number"),
    (["download", "cifar"], "argument name: invalid choice: 'cifar'"),
]  # fmt: skip


@pytest.mark.parametrize("argv,said", BAD_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_option_values_are_refused_when_parsed_naming_the_option(argv, said, capsys, tmp_path):
    code, out, err = run(capsys, *argv, *(["--out", tmp_path] if argv[0] == "train" else []))
    assert code == 2 and said in err, err
    assert "Traceback" not in err and not out
    assert not any(tmp_path.iterdir())  # nothing written


NOT_FOR_THE_MODEL = [
    (["ae", "--beta", "2"], "--beta does not apply to ae: it sets the weight of the KL term"),
    (["ae", "--tc-beta", "2"], "--tc-beta does not apply to ae"),
    (["ae", "--samples", "3"], "--samples does not apply to ae"),
    (["ae", "--likelihood", "gaussian", "--sigma", "0.5"], "--sigma does not apply to ae"),
    (["ae", "--kl-warmup", "2"], "--kl-warmup does not apply to ae: it has no prior p(z)"),
    (["ae", "--nll-samples", "5"], "--nll-samples does not apply to ae: it defines no likelihood"),
    (["ae", "--nll-samples", "5"], ("summary.json holds its validation reconstruction, and "
                                    "'minivae eval' on its checkpoint gives its test reconstruction")),
    (["vae", "--alpha", "1"], "--alpha does not apply to vae"),
    (["cvae", "--alpha", "1"], "--alpha does not apply to cvae"),
    (["vae", "--labels", "100"], "--labels does not apply to vae"),
    (["cvae", "--labels", "100"], "--labels does not apply to cvae"),
    (["m2", "--tc-beta", "4"], "--tc-beta does not apply to m2"),
    (["vae", "--sigma", "0.5"], ("--sigma is the standard deviation of a Gaussian decoder: give "
                                 "--likelihood gaussian with it")),
    (["vae", "--lr-decay", "0.5"], "--lr-decay is the factor of --lr-schedule exponential"),
    (["vae", "--lr", "1e-300", "--lr-schedule", "exponential", "--lr-decay", "1e200", "--epochs",
      "3"], "lr_decay=1e+200 takes the learning rate from 1e-300 to inf by epoch 3"),
    (["m2", "--labels", "15"], ("--labels 15: the labelled examples are class-balanced, so give "
                                "a multiple of the 10 classes")),
    (["m2", "--dataset", "shapes", "--labels", "10"], "multiple of the 3 classes of shapes"),
]  # fmt: skip


@pytest.mark.parametrize("argv,said", NOT_FOR_THE_MODEL, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_options_that_do_not_apply_are_refused_with_the_reason(argv, said, capsys, tmp_path):
    code, _, err = run(capsys, "train", *argv, "--out", tmp_path)
    assert code == 2 and said in " ".join(err.split()), err
    assert not any(tmp_path.iterdir())


def test_the_option_table_is_read_off_the_model_classes():
    """Which option applies to which model: the constructors' arguments and the protocol."""
    table = cli.option_table()
    for argument, (flag, _) in cli.MODEL_OPTIONS.items():
        assert table[flag] == [k for k, cls in MODELS.items() if argument in cls.arguments()]
    assert table["--beta"] == ["vae", "cvae", "m2", "ssvae-continuous"]
    assert table["--tc-beta"] == ["vae", "cvae"] and table["--alpha"] == ["m2"]
    assert table["--labels"] == ["m2", "ssvae-continuous"]
    assert table["--covariance"] == table["--init"] == ["vae"]
    assert table["--kl-warmup"] == table["--nll-samples"] == ["vae", "cvae", "m2", "ssvae-continuous"]
    for path in ("minivae/cli.py", "minivae/train.py", "minivae/checkpoint.py"):  # no kind branches
        assert not re.search(r"kind ==|kind in", (ROOT / path).read_text()), path


def test_a_full_covariance_vae_with_pytorchs_init_trains_and_keeps_both(capsys, tmp_path):
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "r", "--epochs", "1",
            "--covariance", "full", "--init", "uniform"]  # fmt: skip
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    model_config = read_checkpoint(tmp_path / "r" / "checkpoint.npz")[0]["model_config"]
    assert model_config["covariance"] == "full" and model_config["init"] == "uniform"
    code, _, err = run(capsys, "train", "cvae", *TINY, "--out", tmp_path, "--name", "c",
                       "--covariance", "full")  # fmt: skip
    assert code == 2 and "--covariance does not apply to cvae" in err and "applies to vae" in err
    assert not (tmp_path / "c").exists()


def test_the_lessons_refuse_a_misspelt_dataset_as_argparse_does(capsys):
    sys.path.insert(0, str(ROOT))
    from lessons import common

    with pytest.raises(SystemExit) as info:
        common.parse_args(["--dataset", "fashon-mnist"], "a lesson")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --dataset: unknown dataset 'fashon-mnist': choose one of mnist" in err
    assert common.parse_args(["--dataset", "fashion_mnist"], "a lesson").dataset == "fashion_mnist"


# ----------------------------------------------------------------------------- run folders


def test_a_run_folder_is_never_overwritten_by_accident(capsys, tmp_path):
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "r", "--epochs", "1"]
    assert run(capsys, *argv)[0] == 0
    folder = tmp_path / "r"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = run(capsys, *argv)  # the same command again
    assert code == 2
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # untouched
    (folder / "sample-n4-seed0.png").write_bytes(before["samples.png"])  # as `sample` writes
    code, _, err = run(capsys, *argv, "--overwrite", "--seed", "5")
    assert code == 0, err
    assert read_checkpoint(folder / "checkpoint.npz")[0]["train_config"]["seed"] == 5
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 1
    assert not (folder / "sample-n4-seed0.png").exists()  # the old run's figures went with it


def test_overwrite_keeps_the_old_run_when_the_data_cannot_be_loaded(capsys, tmp_path, monkeypatch):
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "r", "--epochs", "1"]
    assert run(capsys, *argv)[0] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("MINIVAE_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, _, err = run(capsys, "train", "vae", "--dataset", "mnist", "--out", tmp_path,
                       "--name", "r", "--overwrite", "--no-progress")  # fmt: skip
    assert code == 1 and "mnist (train) is not available" in err and "MINIVAE_DATA" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before


def test_overwrite_with_settings_the_model_refuses_keeps_the_old_run(capsys, tmp_path):
    """A combination only the model's constructor checks (the total correlation needs a
    diagonal q) is refused when the options are read (exit 2), before any file is removed;
    and train() itself builds the model before it removes an earlier run's files."""
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "r", "--epochs", "1"]
    assert run(capsys, *argv)[0] == 0
    folder = tmp_path / "r"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = run(capsys, *argv, "--covariance", "full", "--tc-beta", "3", "--overwrite")
    assert code == 2 and "needs covariance='diagonal'" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    from minivae.train import TrainConfig, train

    config = json.loads((folder / "config.json").read_text())
    config["model"].update(covariance="full", tc_beta=3.0)
    with pytest.raises(ValueError, match="needs covariance='diagonal'"):
        train(TrainConfig(**config), folder, log=lambda *a: None)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_new_run_never_replaces_figures_it_did_not_write(capsys, tmp_path):
    """A folder with no run files but with a samples.png (or a sample drawn into it) is
    refused without --overwrite, and sample-*.png files are kept unless --overwrite."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "samples.png").write_bytes(b"mine")
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "mine", "--epochs", "1"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "samples.png" in err and "--overwrite" in err
    assert (folder / "samples.png").read_bytes() == b"mine"
    (folder / "samples.png").unlink()
    (folder / "sample-n4-seed0.png").write_bytes(b"mine too")
    assert run(capsys, *argv)[0] == 0
    assert (folder / "sample-n4-seed0.png").read_bytes() == b"mine too"


def test_a_failed_train_leaves_no_run_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("MINIVAE_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, _, err = run(capsys, "train", "vae", "--dataset", "mnist", "--out", tmp_path / "runs",
                       "--no-progress")  # fmt: skip
    assert code == 1 and "Traceback" not in err
    assert "fashion-mnist-builtin" in err  # the data set that needs no files
    assert not (tmp_path / "runs").exists()  # nor the --out folder it had made for it
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mine.txt").write_text("x")
    code, _, err = run(capsys, "train", "vae", "--dataset", "mnist", "--out", tmp_path / "runs",
                       "--no-progress")  # fmt: skip
    assert code == 1 and sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mine.txt"]


def test_resume_refuses_other_options_and_lists_them(capsys, tmp_path):
    """The issue's case: an Adam run resumed with other optimizer, batch, lr, data and seed."""
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "r"]
    assert run(capsys, *argv, "--epochs", "1")[0] == 0
    folder = tmp_path / "r"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = run(capsys, *argv, "--epochs", "2", "--resume", "--optimizer", "sgd",
                       "--batch-size", "7", "--lr", "0.5", "--dataset", "mnist", "--seed", "9",
                       "--latent", "3", "--dtype", "float64")  # fmt: skip
    assert code == 2, err
    for said in ("--optimizer: 'adam' in the checkpoint, 'sgd' now",
                 "--batch-size: 250 in the checkpoint, 7 now", "--lr: 0.001 in the checkpoint",
                 "--dataset: 'fashion-mnist-builtin' in the checkpoint, 'mnist' now",
                 "--seed: 0 in the checkpoint, 9 now",
                 "--latent (the model's latent): 2 in the checkpoint, 3 now"):  # fmt: skip
        assert said in err, said  # every difference at once, the model's among them
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # config.json too
    for changed in (["--lr-schedule", "cosine"], ["--binarize", "none"], ["--n-val", "60"],
                    ["--limit-train", "301"], ["--kl-warmup", "1"], ["--clip-grad", "5"]):  # fmt: skip
        code, _, err = run(capsys, *argv, "--epochs", "2", "--resume", *changed)
        assert code == 2 and f"{changed[0]}: " in err, (changed, err)
    code, _, err = run(capsys, *argv, "--epochs", "2", "--resume", "--latent", "3")
    assert code == 2 and "--latent (the model's latent): 2 in the checkpoint, 3 now" in err
    code, _, err = run(capsys, *argv, "--epochs", "2", "--resume", "--dtype", "float64")
    assert code == 2 and "--dtype: 'float32' in the checkpoint, 'float64' now" in err


def test_resume_lists_a_model_option_left_out_beside_the_training_ones(capsys, tmp_path):
    """A model option given at the start and left out on resume (its default differs) is
    listed in the same refusal as a training option that differs."""
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "r", "--epochs", "1"]
    assert run(capsys, *argv, "--beta", "2")[0] == 0
    code, _, err = run(capsys, *argv, "--resume", "--lr", "0.01", "--latent", "3")
    assert code == 2, err
    for said in ("--lr: 0.001 in the checkpoint, 0.01 now",
                 "--latent (the model's latent): 2 in the checkpoint, 3 now",
                 "--beta (the model's beta): 2.0 in the checkpoint, 1.0 now"):  # fmt: skip
        assert said in err, (said, err)


@pytest.mark.parametrize("model", ["m2", "ssvae-continuous"])
def test_resume_of_a_model_with_data_derived_settings(capsys, tmp_path, model):
    """Their config entries that follow from the data are not taken for differences."""
    argv = ["train", model, *TINY, "--out", tmp_path, "--name", "r", "--labels", "30"]
    assert run(capsys, *argv, "--epochs", "1")[0] == 0
    code, _, err = run(capsys, *argv, "--epochs", "2", "--resume")
    assert code == 0, err
    code, _, err = run(capsys, *argv, "--epochs", "3", "--resume", "--latent", "3")
    assert code == 2 and "--latent (the model's latent)" in err
    assert "n_total" not in err and "label_mean" not in err


@pytest.mark.parametrize("model", ["m2", "ssvae-continuous"])
def test_labels_from_too_few_rows_name_the_data_sets_classes(capsys, tmp_path, model):
    """The 24 training rows of this seed hold labels 0 to 7 only: the message says which of
    the data set's 10 classes is short, not that the data set has 8 classes."""
    code, _, err = run(capsys, "train", model, *TINY[:6], "--limit-train", "30", "--seed", "15",
                       "--labels", "10", "--out", tmp_path, "--no-progress", "--epochs", "1")  # fmt: skip
    assert code == 1 and "Traceback" not in err
    assert re.search(r"class \d has 0 examples, fewer than the 1 per class that n=10 needs", err)
    assert "n_classes=" not in err and "--limit-train" in err


def test_resume_appends_to_the_run_and_keeps_its_config(capsys, tmp_path):
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "r"]
    assert run(capsys, *argv, "--epochs", "1")[0] == 0
    folder = tmp_path / "r"
    config = strict_json(folder / "config.json")
    code, out, err = run(capsys, *argv, "--epochs", "2", "--resume")
    assert code == 0, err
    assert "for 1 epoch more (to 2)" in out and "epochs more" not in out
    again = strict_json(folder / "config.json")
    assert again == {**config, "epochs": 2}  # the only setting a resumed run may change
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    meta = read_checkpoint(folder / "checkpoint.npz")[0]
    assert [r["epoch"] for r in rows] == [1, 2] and rows == meta["history"]
    assert meta["train_config"] == again
    summary = strict_json(folder / "summary.json")  # the training time of both epochs
    assert summary["train_seconds"] == round(sum(r["seconds"] for r in rows), 1)
    assert run(capsys, *argv, "--epochs", "2", "--resume")[0] == 0  # nothing left to do
    assert strict_json(folder / "summary.json")["train_seconds"] == summary["train_seconds"]
    code, _, err = run(capsys, *argv, "--epochs", "1", "--resume")
    assert code == 2 and "it holds 2 epochs, more than the 1 asked for" in err
    code, _, err = run(capsys, "train", "vae", *TINY, "--out", tmp_path, "--name", "none",
                       "--resume")  # fmt: skip
    assert code == 2 and "holds no checkpoint.npz to continue" in err


def test_training_says_when_it_holds_out_fewer_than_n_val(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "vae", *TINY, "--out", tmp_path, "--epochs", "1",
                       "--n-val", "10000")  # fmt: skip
    assert code == 0
    assert "n_val=10000 is more than a fifth of the 300 examples loaded; holding out 60" in out
    assert "(240 train, 60 validation;" in out and "for 1 epoch;" in out


# ----------------------------------------------------------------------------- diverging runs


def test_a_diverging_run_exits_non_zero_and_keeps_only_good_files(capsys, tmp_path):
    """The issue's case: one step per epoch, --lr 1e6, --epochs 3. Epoch 1 ends finite; in
    epoch 2 Adam's second moments overflow while the loss is still finite: never saved."""
    code, _, err = run(capsys, "train", "vae", *TINY, "--out", tmp_path, "--name", "d",
                         "--lr", "1e6", "--epochs", "3")  # fmt: skip
    folder = tmp_path / "d"
    assert code == 1, err
    assert "Traceback" not in err and "RuntimeWarning" not in err
    assert re.search(r"training diverged: after epoch 2, the optimizer entry '[\w.]+' holds "
                     r"\d+ infinite values; stopped", err), err  # fmt: skip
    assert f"The last good checkpoint, {folder / 'checkpoint.npz'} (epoch 1)" in err
    summary = strict_json(folder / "summary.json")
    assert summary["status"] == "diverged" and summary["epochs"] == 1
    meta, _, _ = read_checkpoint(folder / "checkpoint.npz")  # loads: everything finite
    assert meta["epoch"] == 1
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert rows == meta["history"] and all(math.isfinite(r["val_elbo"]) for r in rows)


def test_a_run_diverging_in_its_first_epoch_leaves_nothing(capsys, tmp_path):
    code, _, err = run(capsys, "train", "vae", *TINY, "--out", tmp_path, "--name", "d",
                       "--lr", "1e9", "--epochs", "3")  # fmt: skip
    assert code == 1 and "after epoch 1" in err
    assert "No checkpoint was written, and the files of this run were removed" in err
    assert not (tmp_path / "d").exists()


def test_summary_json_is_strict_and_says_which_numbers_were_not_finite(tmp_path):
    written = cli._write_summary(tmp_path / "s.json", {"test_nll": float("nan"), "ok": 1.5,
                                                       "more": {"x": float("inf")}})  # fmt: skip
    data = strict_json(tmp_path / "s.json")
    assert data == written
    assert data["test_nll"] is None and data["more"]["x"] is None and data["ok"] == 1.5
    assert data["null_because_not_finite"] == ["test_nll", "more.x"]


# ----------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("content,said", [
    (b"not a checkpoint at all", "it holds text, not the zip archive"),
    (b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'", "it is a single NumPy array (.npy)"),
    (b"\x80\x04\x95\x00", "it is a Python pickle"),
    (b"", "it is empty"),
])  # fmt: skip
@pytest.mark.parametrize("command", ["eval", "sample"])
def test_bad_checkpoint_files_get_a_message(tmp_path, capsys, content, said, command):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    code, _, err = run(capsys, command, bad)
    assert code == 1 and said in err and "Traceback" not in err
    assert err.startswith(f"minivae {command}: error: {bad}")
    assert "unsafe" not in err and "allow_pickle" not in err


def test_missing_checkpoint_and_a_folder(tmp_path, capsys):
    code, _, err = run(capsys, "eval", tmp_path / "missing.npz")
    assert code == 1 and "does not exist" in err
    code, _, err = run(capsys, "sample", tmp_path)
    assert code == 1 and "is a folder, not a file" in err


def test_eval_refuses_a_data_set_the_model_does_not_fit(trained_run, capsys):
    code, _, err = run(capsys, "eval", trained_run / "checkpoint.npz", "--dataset", "shapes")
    assert code == 2  # an option that cannot be used, refused before any work
    assert "--dataset shapes:" in err
    assert "holds a model for 784 pixels per image, but shapes has 1024" in err


def test_no_traceback_reaches_the_terminal(tmp_path):
    """The real command in a process of its own: a bad file is a message and exit code 1."""
    bad = tmp_path / "bad.npz"
    bad.write_text("hello")
    done = subprocess.run([sys.executable, "-m", "minivae", "eval", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("minivae eval: error:")


# ----------------------------------------------------------------------------- other failures


def test_out_of_memory_is_a_message_with_what_to_ask_for(trained_run, capsys, monkeypatch):
    import minivae.train

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 71.0 PiB for an array")

    monkeypatch.setattr(minivae.train, "evaluate_checkpoint", exhausted)
    code, _, err = run(capsys, "eval", trained_run / "checkpoint.npz")
    assert code == 1 and "Traceback" not in err
    assert "minivae eval: error: out of memory (Unable to allocate 71.0 PiB" in err
    assert "--nll-samples" in err and "--limit" in err


def test_interrupt_is_one_line_and_exit_130(trained_run, capsys, monkeypatch):
    import minivae.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(minivae.train, "evaluate_checkpoint", interrupted)
    code, _, err = run(capsys, "eval", trained_run / "checkpoint.npz")
    assert code == 130 and err == "minivae eval: interrupted\n"


def test_interrupted_training_says_what_was_kept(capsys, tmp_path, monkeypatch):
    from minivae.models.vae import VAE

    plain, calls = VAE.loss, []

    def loss(self, batch, **kwargs):  # Ctrl-C at the second training step: in epoch 2
        calls.append(is_grad_enabled())  # (validation runs the loss too, without a graph)
        if sum(calls) == 2:
            raise KeyboardInterrupt
        return plain(self, batch, **kwargs)

    monkeypatch.setattr(VAE, "loss", loss)
    argv = ["train", "vae", *TINY, "--out", tmp_path, "--name", "r", "--epochs", "3"]
    code, _, err = run(capsys, *argv)
    assert code == 130 and "interrupted" in err and "--resume" in err and "Traceback" not in err
    assert read_checkpoint(tmp_path / "r" / "checkpoint.npz")[0]["epoch"] == 1
    calls.clear()
    monkeypatch.setattr(VAE, "loss", lambda self, batch, **kw: (_ for _ in ()).throw(
        KeyboardInterrupt))  # fmt: skip
    code, _, err = run(capsys, "train", "vae", *TINY, "--out", tmp_path, "--name", "s")
    assert code == 130 and "nothing was kept" in err and not (tmp_path / "s").exists()


def test_an_unexpected_error_says_it_is_a_bug_and_debug_shows_the_traceback(
    trained_run, capsys, monkeypatch
):
    import minivae.train

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(minivae.train, "evaluate_checkpoint", broken)
    code, _, err = run(capsys, "eval", trained_run / "checkpoint.npz")
    assert code == 1 and "internal error: TypeError: unsupported operand" in err
    assert "--debug" in err and "MINIVAE_DEBUG=1" in err
    with pytest.raises(TypeError):
        main(["eval", str(trained_run / "checkpoint.npz"), "--debug"])
    with pytest.raises(TypeError):
        main(["--debug", "eval", str(trained_run / "checkpoint.npz")])
    monkeypatch.setenv("MINIVAE_DEBUG", "1")
    with pytest.raises(TypeError):
        main(["eval", str(trained_run / "checkpoint.npz")])


def test_download_offline_points_to_the_data_folder_and_the_built_in_set(capsys, monkeypatch):
    monkeypatch.setenv("MINIVAE_OFFLINE", "1")
    code, _, err = run(capsys, "download", "mnist")
    assert code == 1 and "MINIVAE_OFFLINE=1" in err
    assert "MINIVAE_DATA" in err and "fashion-mnist-builtin" in err


# ----------------------------------------------------------------------------- models


def test_tc_beta_reaches_the_model(tmp_path, capsys):
    code, _, err = run(capsys, "train", "vae", *TINY, "--epochs", "1", "--out", tmp_path,
                       "--name", "tc", "--tc-beta", "4")  # fmt: skip
    assert code == 0, err
    config = json.loads((tmp_path / "tc" / "config.json").read_text())
    assert config["model"]["tc_beta"] == 4.0
    metrics = [json.loads(line) for line in (tmp_path / "tc" / "metrics.jsonl").open()]
    assert "train_tc" in metrics[0]


def test_capacity_reaches_the_model_and_grows_with_the_warm_up(tmp_path, capsys):
    code, _, err = run(capsys, "train", "vae", *TINY, "--epochs", "2", "--out", tmp_path,
                       "--name", "cap", "--capacity", "8", "--beta", "50",
                       "--kl-warmup", "2")  # fmt: skip
    assert code == 0, err
    config = json.loads((tmp_path / "cap" / "config.json").read_text())
    assert config["model"]["capacity"] == 8.0 and config["model"]["beta"] == 50.0
    metrics = [json.loads(line) for line in (tmp_path / "cap" / "metrics.jsonl").open()]
    # one step per epoch (300 examples, 50 held out, batches of 250): c = 8 x the warm-up's
    # 0 at the first step and 1/2 at the second
    assert [row["train_capacity"] for row in metrics] == [0.0, 4.0]


def test_the_autoencoder_trains_evaluates_and_refuses_to_sample(tmp_path, capsys):
    code, _, err = run(capsys, "train", "ae", *TINY, "--epochs", "1", "--out", tmp_path,
                       "--name", "ae", "--nll-samples", "0")  # fmt: skip
    assert code == 0, err
    folder = tmp_path / "ae"
    summary = strict_json(folder / "summary.json")
    assert summary["status"] == "completed" and summary["val_recon"] < 0
    assert not (folder / "samples.png").exists()  # no prior, no samples figure
    code, out, err = run(capsys, "eval", folder / "checkpoint.npz", "--limit", "50")
    assert code == 0 and "no likelihood p(x), so no NLL" in err
    assert json.loads(out)["test_recon"] < 0 and "test_nll_k5000" not in out
    code, _, err = run(capsys, "eval", folder / "checkpoint.npz", "--nll-samples", "5")
    assert code == 2 and "defines no likelihood p(x)" in err
    code, _, err = run(capsys, "sample", folder / "checkpoint.npz")
    assert code == 2 and "has no prior p(z) to sample from" in err and "train a vae" in err


@pytest.fixture(scope="module")
def continuous_run(tmp_path_factory):
    """The continuous-label model through the command: its label is each image's slant."""
    out = tmp_path_factory.mktemp("runs")
    code = main(["train", "ssvae-continuous", "--dataset", "fashion-mnist-builtin", "--hidden",
                 "16", "--latent", "2", "--epochs", "1", "--batch-size", "100", "--n-val", "200",
                 "--limit-train", "1000", "--labels", "50", "--out", str(out), "--name", "cont",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    return out / "cont"


def test_the_continuous_label_model_trains_evaluates_and_samples(continuous_run, capsys, tmp_path):
    for name in ("checkpoint.npz", "reconstructions.png", "samples.png", "training_curves.png"):
        assert (continuous_run / name).exists(), name
    config = json.loads((continuous_run / "config.json").read_text())
    assert config["model"]["kind"] == "ssvae-continuous" and config["model"]["label_std"] > 0
    code, out, _ = run(capsys, "eval", continuous_run / "checkpoint.npz", "--nll-samples", "5",
                       "--limit", "100")  # fmt: skip
    assert code == 0
    out = json.loads(out.strip().splitlines()[-1])
    assert out["n_examples"] == 100 and out["test_label_mse"] > 0 and out["test_nll_k5"] > 0
    target = tmp_path / "slant.png"
    assert run(capsys, "sample", continuous_run / "checkpoint.npz", "-n", "9", "--label", "12.5",
               "--out", target)[0] == 0  # fmt: skip
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(target) > 0


def test_readme_documents_the_command_and_every_environment_variable():
    readme = (ROOT / "README.md").read_text()
    command = readme.split("## The command", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"minivae eval .*--nll-samples \d+ --limit \d+", command)  # --limit beside eval
    for said in ("--resume", "--overwrite", "--debug", "Exit codes", "null_because_not_finite"):
        assert said in command, said
    table = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    sources = [*(ROOT / "minivae").rglob("*.py"), ROOT / "lessons" / "common.py"]
    used = {m for path in sources for m in re.findall(r"MINIVAE_[A-Z]+", path.read_text())}
    assert used >= {"MINIVAE_DATA", "MINIVAE_OFFLINE", "MINIVAE_DEBUG", "MINIVAE_FAST",
                    "MINIVAE_QUICK", "MINIVAE_DEVICE"}  # fmt: skip
    for name in sorted(used):
        assert f"`{name}" in table, f"{name} is read but not in README's Environment variables"

