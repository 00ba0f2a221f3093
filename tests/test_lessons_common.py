"""lessons/common.py: a lesson's settings as options, quick mode, verdicts, figures shown inline."""

from __future__ import annotations

import json
import os
import sys

import pytest
from lesson_loader import PNG_SIGNATURE
from matplotlib.figure import Figure

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

from lessons import common
from minivae import backend as B


@pytest.fixture(autouse=True)
def no_quick_from_the_environment(monkeypatch):
    monkeypatch.delenv("MINIVAE_QUICK", raising=False)


def first_cell(tmp_path, **own):
    """The namespace after a lesson's first cell: the shared settings and its own ones."""
    return {"QUICK": False, "SEED": 0, "DEVICE": "cpu", "OUT": str(tmp_path), **own}


def test_the_command_line_sets_the_settings_and_they_are_written_back(tmp_path):
    ns = first_cell(tmp_path, EPOCHS=10, RATE=0.5, NAME="a")
    lesson = common.setup("90_x", ns, own=("EPOCHS", "RATE", "NAME"),
                          argv=["--quick", "--seed", "3", "--epochs", "4", "--rate", "0.25",
                                "--name", "b"])  # fmt: skip
    assert (ns["QUICK"], ns["SEED"], ns["EPOCHS"], ns["RATE"], ns["NAME"]) == (True, 3, 4, 0.25, "b")
    assert lesson.quick and lesson.numbers["seed"] == 3 and lesson.numbers["dataset"] is None
    assert os.path.isdir(tmp_path / "90_x")
    assert "DATASET" not in ns  # a shared setting the lesson does not have is not added


def test_without_options_the_first_cell_stands(tmp_path, capsys):
    ns = first_cell(tmp_path, EPOCHS=10)
    lesson = common.setup("90_x", ns, own=("EPOCHS",), argv=[])
    assert (ns["QUICK"], ns["EPOCHS"], lesson.quick) == (False, 10, False)
    assert "QUICK mode" not in capsys.readouterr().out


def test_an_own_setting_that_may_be_none_takes_its_type_from_own(tmp_path):
    ns = first_cell(tmp_path, EPOCHS=None, SHOW=True)
    common.setup("90_x", ns, own={"EPOCHS": common.positive_int, "SHOW": None},
                 argv=["--epochs", "7", "--no-show"])  # fmt: skip
    assert ns["EPOCHS"] == 7 and ns["SHOW"] is False
    with pytest.raises(SystemExit):
        common.setup("90_x", first_cell(tmp_path, EPOCHS=None), own={"EPOCHS": common.positive_int},
                     argv=["--epochs", "0"])  # fmt: skip
    with pytest.raises(TypeError, match="give its type"):
        common.setup("90_x", first_cell(tmp_path, EPOCHS=None), own=("EPOCHS",), argv=[])
    with pytest.raises(KeyError, match="EPOCHS"):
        common.setup("90_x", first_cell(tmp_path), own=("EPOCHS",), argv=[])


@pytest.mark.parametrize("argv,said", [
    (["--seed", "-1"], "argument --seed: must be a whole number >= 0"),
    (["--epochs", "0"], "argument --epochs: must be a whole number >= 1"),
    (["--epochs", "two"], "argument --epochs: expected a whole number, got 'two'"),
    (["--rate", "nan"], "argument --rate: expected a finite number"),
    (["--rate", "inf"], "argument --rate: expected a finite number"),
])  # fmt: skip
def test_bad_values_of_settings_are_one_line_and_exit_2(tmp_path, capsys, argv, said):
    """An int setting counts something (>= 1), a float must be finite, a seed >= 0."""
    with pytest.raises(SystemExit) as info:
        common.setup("90_x", first_cell(tmp_path, EPOCHS=3, RATE=0.5), own=("EPOCHS", "RATE"),
                     argv=argv)  # fmt: skip
    assert info.value.code == 2 and said in capsys.readouterr().err


def test_quick_sizes_give_way_to_a_setting_the_command_line_gives(tmp_path):
    ns = first_cell(tmp_path, EPOCHS=10, NLL_K=500)
    lesson = common.setup("90_x", ns, own=("EPOCHS", "NLL_K"), argv=["--quick", "--epochs", "3"])
    assert lesson.pick("EPOCHS", 1) == 3  # given: it holds in quick mode too
    assert lesson.pick("NLL_K", 20) == 20  # not given: the quick size
    lesson = common.setup("90_x", first_cell(tmp_path, EPOCHS=10), own=("EPOCHS",), argv=[])
    assert lesson.pick("EPOCHS", 1) == 10  # a full run: the setting


def test_the_default_out_is_in_the_checkout_wherever_the_lesson_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {"QUICK": True, "SEED": 0, "DEVICE": "cpu", "OUT": common.SHARED_SETTINGS["OUT"]}
    lesson = common.setup("90_default_out_check", ns, argv=[])
    root = os.path.dirname(os.path.dirname(os.path.abspath(common.__file__)))
    try:
        assert lesson.dir == os.path.join(root, "runs", "lessons", "90_default_out_check")
        assert not (tmp_path / "runs").exists()
    finally:
        os.rmdir(lesson.dir)


def test_device_gpu_without_cupy_is_one_line(tmp_path, capsys, monkeypatch):
    if B.gpu_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as info:
        common.setup("90_x", first_cell(tmp_path), argv=["--device", "gpu"])
    assert info.value.code == 2 and "--device gpu:" in capsys.readouterr().err
    assert B.device == "cpu"


def test_an_unknown_option_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        common.setup("90_x", first_cell(tmp_path), argv=["--epochs", "3"])


def test_a_shared_option_the_lesson_does_not_use_is_accepted_and_said_so(tmp_path, capsys):
    ns = first_cell(tmp_path)
    lesson = common.setup("90_x", ns, argv=["--dataset", "fashion-mnist", "--no-progress"])
    out = capsys.readouterr().out
    assert "--dataset is not used by this lesson" in out and "--no-progress is not used" in out
    assert "DATASET" not in ns and lesson.args.dataset == "fashion-mnist"


def test_minivae_quick_turns_quick_on_and_says_so_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIVAE_QUICK", "1")
    ns = first_cell(tmp_path)
    lesson = common.setup("90_x", ns, argv=[])
    assert ns["QUICK"] is True and lesson.quick
    assert "the code runs, not what the lesson concludes" in capsys.readouterr().out
    assert common.parse_args([], "doc").quick is True  # the older form too
    monkeypatch.setenv("MINIVAE_QUICK", "0")
    assert common.setup("90_x", first_cell(tmp_path), argv=[]).quick is False


def test_in_a_kernel_the_command_line_is_never_read(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "in_kernel", lambda: True)
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-1.json"])
    ns = first_cell(tmp_path, EPOCHS=10, QUICK=True)
    common.setup("90_x", ns, own=("EPOCHS",))
    assert ns["EPOCHS"] == 10 and ns["QUICK"] is True


def test_outside_a_kernel_in_kernel_is_false():
    assert common.in_kernel() is False


def test_verdicts_are_recorded_always_and_printed_only_outside_quick_mode(tmp_path, capsys):
    for quick in (True, False):
        lesson = common.setup("90_x", first_cell(tmp_path, QUICK=quick), argv=[])
        capsys.readouterr()
        assert lesson.verdict("bar_a", True, "agreement above 95 %") is True
        assert lesson.verdict("bar_b", False, "log-likelihood gain above 5 nats") is False
        out = capsys.readouterr().out
        assert (lesson.numbers["bar_a"], lesson.numbers["bar_b"]) == (True, False)
        if quick:
            assert out == ""
        else:
            assert "agreement above 95 %: met" in out and "gain above 5 nats: NOT met" in out


def test_the_summary_records_the_dataset_used_and_the_swap_is_said(tmp_path, capsys):
    lesson = common.setup("90_x", first_cell(tmp_path, DATASET="mnist"), argv=[])
    lesson.dataset_used("fashion-mnist-builtin")
    assert "asked for mnist, got fashion-mnist-builtin" in capsys.readouterr().out
    lesson.report("tiny", 1.234e-13, "an error", ".2e")
    lesson.report("rounded", 1 / 3, "a third")
    summary = lesson.finish()
    on_disk = json.loads((tmp_path / "90_x" / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == summary and on_disk["dataset"] == "fashion-mnist-builtin"
    assert on_disk["tiny"] == 1.234e-13 and on_disk["rounded"] == 0.333333


def test_save_figure_saves_and_shows_only_in_a_kernel(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    for kernel in (False, True):
        monkeypatch.setattr(common, "in_kernel", lambda k=kernel: k)
        fig = Figure(figsize=(2, 2))
        fig.subplots().plot([0, 1], [1, 0])
        path = common.save_figure(fig, str(tmp_path / f"f{kernel}.png"))
        assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert len(shown) == 1 and shown[0].format == "png" and shown[0].data.startswith(PNG_SIGNATURE)


def test_pick_and_to_device():
    assert common.pick((100, 3), quick=True) == 3 and common.pick((100, 3), quick=False) == 100
    assert B.to_numpy(common.to_device([1, 2])).dtype == "int64"
    assert B.to_numpy(common.to_device([1.0, 2.0])).dtype == B.get_default_dtype()


def test_a_bad_minivae_fast_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from minivae import fast

    monkeypatch.setattr(fast, "ENVIRONMENT_ERROR", "MINIVAE_FAST='yes': set it to 1 or 0")
    with pytest.raises(SystemExit) as info:
        common.setup("90_x", first_cell(tmp_path), argv=[])
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith("error: MINIVAE_FAST='yes': set it to 1 or 0\n")


def test_the_lessons_device_setting_stands_over_an_unusable_minivae_device(tmp_path, monkeypatch):
    """MINIVAE_DEVICE=tpu made the backend refuse arrays; the lesson's DEVICE picks the cpu."""
    monkeypatch.setattr(B, "ENVIRONMENT_ERROR", "MINIVAE_DEVICE='tpu' is not a device")
    monkeypatch.setattr(B, "xp", B._Unusable())
    with pytest.raises(RuntimeError, match="MINIVAE_DEVICE='tpu'"):
        B.xp.zeros(1)
    common.setup("90_x", first_cell(tmp_path), argv=[])
    assert B.ENVIRONMENT_ERROR is None and B.xp is B.np and B.get_device() == "cpu"
