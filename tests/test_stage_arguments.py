"""Stage entry points take no command-line arguments: `--help` explains, anything else is refused.

Before, `python -m stages.<name> --help` (or `--epochs 3`) ran the whole stage and ignored the argument.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from headflow.stage import check_stage_arguments

ROOT = Path(__file__).resolve().parents[1]


def test_no_arguments_returns_and_the_stage_runs(capsys):
    check_stage_arguments("DVC stage `faces`.", ["/x/stages/faces.py"])
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_the_docstring_and_where_the_settings_are(capsys, flag):
    with pytest.raises(SystemExit) as exit_:
        check_stage_arguments("DVC stage `faces`: track the speaker.", ["/x/stages/faces.py", flag])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert out.startswith("DVC stage `faces`: track the speaker.")
    assert "`faces` block of params.yaml" in out and "dvc exp run -S faces.<key>=<value>" in out


def test_any_other_argument_is_refused_naming_it(capsys):
    with pytest.raises(SystemExit) as exit_:
        check_stage_arguments("doc", ["/x/stages/train_lipsync.py", "--epochs", "3"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "stages.train_lipsync takes no arguments" in err and "'--epochs 3'" in err


def test_every_stage_entry_point_checks_its_arguments(tmp_path):
    # run as a user would, from an empty folder: were the flag ignored, the stage would run and fail on the
    # missing params.yaml with another exit code and no usage text
    stages = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")
    for stage in stages:
        assert "setup_logging(__doc__)" in (ROOT / "stages" / f"{stage}.py").read_text(), stage
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-m", "stages.ingest", "--bogus"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "stages.ingest takes no arguments" in done.stderr, done.stderr[-2000:]
    assert not any(tmp_path.iterdir())
