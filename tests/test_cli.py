"""The minivae command: every subcommand end to end on the built-in data, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from minivae.cli import build_parser, main

SUBCOMMANDS = ("train", "eval", "sample", "datasets", "download")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_documents_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in text, f"{command} --help does not show {flag}"
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help text"


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


def test_train_writes_the_run_folder(trained_run, capsys):
    for name in ("config.json", "metrics.jsonl", "checkpoint.npz", "summary.json",
                 "training_curves.png", "reconstructions.png", "samples.png"):  # fmt: skip
        assert (trained_run / name).exists(), name
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["epochs"] == 1
    assert summary["test_nll_k5"] > 0  # nats per example: a negative log-likelihood of images


def test_eval_prints_elbo_and_nll(trained_run, capsys):
    code = main(["eval", str(trained_run / "checkpoint.npz"), "--nll-samples", "20",
                 "--limit", "200"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_examples"] == 200
    # the importance-sampled log-likelihood is at least the ELBO (on average)
    assert out["test_nll_k20"] <= -out["test_elbo"] + 0.5


def test_sample_with_and_without_label(trained_run, capsys, tmp_path):
    target = tmp_path / "s.png"
    assert main(["sample", str(trained_run / "checkpoint.npz"), "-n", "16", "--label", "3",
                 "--out", str(target)]) == 0  # fmt: skip
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = main(["sample", str(trained_run / "checkpoint.npz"), "--label", "12"])
    assert code == 2
    assert "label 12 is outside the valid range [0, 10)" in capsys.readouterr().err


def test_datasets_lists_every_dataset(capsys):
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    for name in ("mnist", "fashion-mnist", "fashion-mnist-builtin", "shapes"):
        assert name in text
    assert "built in" in text


def test_unknown_names_list_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        main(["train", "gan"])
    err = capsys.readouterr().err
    assert "invalid choice: 'gan'" in err and "vae" in err and "m2" in err
    with pytest.raises(SystemExit):
        main(["train", "vae", "--dataset", "cifar"])
    assert "invalid choice: 'cifar'" in capsys.readouterr().err


def test_corrupt_checkpoint_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["eval", str(bad)]) == 2
    assert "corrupt or not a minivae checkpoint" in capsys.readouterr().err


def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "minivae", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in SUBCOMMANDS:
        assert command in done.stdout


def test_tc_beta_reaches_the_model_and_is_refused_where_it_does_not_apply(tmp_path):
    code = main(["train", "vae", "--dataset", "fashion-mnist-builtin", "--hidden", "16",
                 "--latent", "2", "--epochs", "1", "--batch-size", "100", "--n-val", "200",
                 "--limit-train", "600", "--out", str(tmp_path), "--name", "tc", "--no-progress",
                 "--tc-beta", "4"])  # fmt: skip
    assert code == 0
    config = json.loads((tmp_path / "tc" / "config.json").read_text())
    assert config["model"]["tc_beta"] == 4.0
    metrics = [json.loads(line) for line in (tmp_path / "tc" / "metrics.jsonl").open()]
    assert "train_tc" in metrics[0]
    with pytest.raises(SystemExit, match="--tc-beta applies to vae and cvae, not m2"):
        main(["train", "m2", "--tc-beta", "4", "--out", str(tmp_path)])


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
    capsys.readouterr()
    assert main(["eval", str(continuous_run / "checkpoint.npz"), "--nll-samples", "5",
                 "--limit", "100"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_examples"] == 100 and out["test_label_mse"] > 0 and out["test_nll_k5"] > 0
    target = tmp_path / "slant.png"
    assert main(["sample", str(continuous_run / "checkpoint.npz"), "-n", "9", "--label", "12.5",
                 "--out", str(target)]) == 0  # fmt: skip
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_refuses_what_a_model_cannot_do(tmp_path, capsys):
    code = main(["train", "ae", "--dataset", "fashion-mnist-builtin", "--hidden", "8",
                 "--latent", "2", "--epochs", "1", "--batch-size", "100", "--n-val", "100",
                 "--limit-train", "500", "--out", str(tmp_path), "--name", "ae",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    assert not (tmp_path / "ae" / "samples.png").exists()  # no prior, no samples figure
    assert main(["sample", str(tmp_path / "ae" / "checkpoint.npz")]) == 2
    assert "no prior to sample from" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--beta applies to vae, cvae, m2 and ssvae-continuous, "
                                         "not ae"):
        main(["train", "ae", "--beta", "2", "--out", str(tmp_path)])
