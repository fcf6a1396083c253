"""The installed package: our envs install as ``purejaxpo.envs`` (no top-level ``envs`` module to clash with a
user's own), their data ships inside the wheel, and importing them does not import the env registry back."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_wheel_installs_envs_as_a_subpackage_with_its_data(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", str(REPO), "-w", str(wheels)], check=True, timeout=240)
    (wheel,) = wheels.glob("purejaxpo-*.whl")
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=120)
    assert not (site / "envs").exists()
    # every subpackage of the source tree made it into the wheel (pyproject lists them explicitly)
    source = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "purejaxpo").rglob("__init__.py")}
    installed = {p.parent.relative_to(site).as_posix() for p in (site / "purejaxpo").rglob("__init__.py")}
    assert source <= installed, sorted(source - installed)
    assert (site / "purejaxpo" / "envs" / "data" / "lot_sizing" / "setting_15items_5machines_t100_i100.json").is_file()
    check = (
        "import importlib.util, sys; "
        "assert importlib.util.find_spec('envs') is None, 'a top-level envs module is importable'; "
        "import purejaxpo; assert purejaxpo.__file__.startswith(sys.argv[1]), purejaxpo.__file__; "
        "env, params = purejaxpo.make_env('LotSizing-v0'); print(type(env).__module__)"
    )
    # run outside the repo (its top-level envs/ folder must not be on the path) against the wheel's files
    out = subprocess.run([sys.executable, "-c", check, str(site)], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": ""},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "purejaxpo.envs.lot_sizing"


def test_envs_never_import_the_env_registry():
    """``purejaxpo.environments`` imports ``purejaxpo.envs`` lazily, one way only: no import circle."""
    imports = ("from purejaxpo.environments import", "import purejaxpo.environments", "from purejaxpo import make_env")
    offenders = [p.name for p in (REPO / "envs").glob("*.py") if any(i in p.read_text() for i in imports)]
    assert not offenders, offenders
