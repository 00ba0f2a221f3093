"""Lessons run as notebooks, the way a learner runs them: cell by cell, top to bottom, on a kernel.

jupytext turns the percent-format lesson into a notebook, the test edits its settings cell
as a learner would (OUT to a temporary folder), and nbclient runs every cell on a fresh
kernel of this interpreter started in lessons/ (Jupyter's working directory for a notebook
there), with MINIVAE_QUICK=1. Then the figures must have been both shown inline and saved.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jupytext
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from lesson_loader import LESSONS
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

# The lessons written in the notebook form (cells at module level, settings read by
# common.setup): every lesson is, and a new one joins this list.
NOTEBOOK_LESSONS = [
    "00_latent_variable_models.py",
    "01_autoencoder.py",
    "02_vae.py",
    "03_vae_estimators_and_likelihood.py",
    "04_beta_vae.py",
    "05_conditional_vae.py",
    "06_semi_supervised_vae.py",
    "07_semi_supervised_regression.py",
    "08_full_covariance_and_amortization.py",
]
KERNEL = "minivae-lessons-test"
TIMEOUT_S = 300  # per cell; a quick lesson takes seconds


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """A kernel spec that runs this interpreter, so the kernel sees the same packages as the tests
    (a "python3" spec installed elsewhere on the machine may point at another Python)."""
    root = tmp_path_factory.mktemp("kernels")
    (root / KERNEL).mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minivae lessons (tests)",
        "language": "python",
    }
    (root / KERNEL / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(root)])


def run_notebook(nb, cwd: Path, kernel_specs: KernelSpecManager, scratch: Path):
    """Run every cell of ``nb`` in order on a fresh kernel started in ``cwd``; nb gets the outputs.
    The kernel's connection file goes to ``scratch``, not to the user's Jupyter folders."""
    km = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs,
                            connection_file=str(scratch / "kernel-connection.json"))  # fmt: skip
    client = NotebookClient(nb, km=km, timeout=TIMEOUT_S, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def outputs(nb, output_type: str):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
            if o.output_type == output_type]  # fmt: skip


def set_setting(nb, name: str, value) -> None:
    """Edit the settings cell (the first code cell) as a learner would: ``NAME = value``."""
    cell = next(c for c in nb.cells if c.cell_type == "code")
    line = re.compile(rf"^{name} = .*$", flags=re.MULTILINE)
    source, count = line.subn(f"{name} = {value!r}", cell.source)
    assert count == 1, f"the first code cell assigns {name} {count} times, not once"
    cell.source = source


@pytest.mark.parametrize("filename", NOTEBOOK_LESSONS)
def test_lesson_runs_as_a_notebook_and_shows_its_figures(filename, tmp_path, monkeypatch,
                                                         kernel_specs):  # fmt: skip
    monkeypatch.setenv("MINIVAE_QUICK", "1")  # the kernel inherits the environment
    nb = jupytext.read(LESSONS / filename)
    set_setting(nb, "OUT", str(tmp_path))
    run_notebook(nb, LESSONS, kernel_specs, tmp_path)

    folder = tmp_path / Path(filename).stem
    saved = sorted(folder.glob("*.png"))
    shown = [o for o in outputs(nb, "display_data") if "image/png" in o.data]
    assert saved, f"the notebook saved no figure in {folder}"
    assert len(shown) == len(saved), f"{len(shown)} figures shown inline, {len(saved)} saved"
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["quick"] is True  # from MINIVAE_QUICK=1, not from the settings cell
    printed = "".join(o.text for o in outputs(nb, "stream"))
    assert "QUICK mode" in printed and not re.search(r"\b(NOT )?met\b", printed)


def test_a_kernel_started_in_the_repository_root_finds_the_lessons_code(tmp_path, kernel_specs):
    """The settings cell and the setup cell of lesson 00, from the root of the checkout:
    there `import common` fails, and the lesson imports lessons.common instead."""
    nb = jupytext.read(LESSONS / NOTEBOOK_LESSONS[0])
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    nb.cells = nb.cells[: code[1] + 1]  # up to the cell that calls common.setup
    set_setting(nb, "OUT", str(tmp_path))
    set_setting(nb, "QUICK", True)
    nb.cells.append(new_code_cell("import sys\nprint(common.__name__, QUICK, '-f' in sys.argv)"))
    run_notebook(nb, LESSONS.parent, kernel_specs, tmp_path)
    printed = "".join(o.text for o in outputs(nb, "stream"))
    assert "lessons.common True True" in printed  # the kernel's own -f argument was not parsed


def test_every_lesson_in_the_notebook_form_is_listed_here():
    in_form = sorted(p.name for p in LESSONS.glob("[0-9][0-9]_*.py")
                     if "common.setup(" in p.read_text(encoding="utf-8"))  # fmt: skip
    assert in_form == sorted(NOTEBOOK_LESSONS)
    every = sorted(p.name for p in LESSONS.glob("[0-9][0-9]_*.py"))
    assert in_form == every, f"not in the notebook form: {sorted(set(every) - set(in_form))}"
