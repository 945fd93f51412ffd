"""The package as a user installs it: a wheel built from this checkout, installed (not editable) into a fresh
venv, runs the everyday command, the store listing and the report from an empty directory, finding its config
tree, toy data, shipped tiny backbone and Hydra plugins as package data and writing under that directory's runs/."""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST_OVERRIDES, cli_env
from softprompt_xl.config import PROJECT_DIR


def setuptools_builds_wheels() -> bool:
    try:
        import setuptools
        from packaging.version import Version
    except ImportError:
        return False
    return Version(setuptools.__version__) >= Version("70.1")


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """The venv's python. It reaches the dependencies installed for this interpreter (no download) through a .pth
    file naming this interpreter's site directories: `--system-site-packages` would lend the *base* interpreter's
    instead, which inside a virtualenv (where most users install) lack them. Directories named by a .pth file have
    their own .pth files left unread, so an editable install of the checkout there stays out of the venv; the
    package itself is the wheel's copy (--force-reinstall: pip would take the other install of the same version for
    it). Built from a copy of the source, so that setuptools' build/ stays out of the checkout; with the setuptools
    installed here when it can build wheels itself (70.1 on), so that no index is needed, else in pip's isolated
    build environment as `pip install -e .` did."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    shutil.copytree(PROJECT_DIR, src, ignore=shutil.ignore_patterns(
        ".git", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "wandb", ".venv", "venv"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    isolation = ["--no-build-isolation"] if setuptools_builds_wheels() else []
    subprocess.run([*pip, "wheel", "--no-deps", *isolation, "-w", tmp / "wheel", src], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp / "venv"], check=True)
    python = tmp / "venv" / "bin" / "python"
    own_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    lent = [d for d in (*site.getsitepackages(), site.getusersitepackages()) if Path(d).is_dir()]
    (Path(own_site) / "lent-site-packages.pth").write_text("".join(f"{d}\n" for d in lent))
    (wheel,) = (tmp / "wheel").glob("softprompt_xl-*.whl")
    subprocess.run([python, *pip[1:], "install", "--no-deps", "--no-index", "--force-reinstall", wheel], check=True)
    return python


def run(python: Path, module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH unset and paths.root not given: only the installed copy and its own defaults are in play (the
    # backbone: the one the wheel ships).
    env = cli_env({"PYTHONPATH": None, "SOFTPROMPT_XL_ROOT": None, "HOME": str(cwd.parent / "home")})
    return subprocess.run([python, "-m", module, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)


def test_the_installed_package_runs_from_an_empty_directory(venv, tmp_path):
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    # the venv's copy, not the checkout (setuptools' editable finder in the system site-packages must not win)
    where = subprocess.run([venv, "-c", "import softprompt_xl, hydra_plugins.softprompt_xl_sweeper as s; "
                                        "print(softprompt_xl.__file__); print(s.__file__)"],
                           env=cli_env({"PYTHONPATH": None}), cwd=cwd, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    venv_dir = venv.parent.parent.resolve()
    assert all(Path(f).resolve().is_relative_to(venv_dir) for f in where.stdout.split()), where.stdout

    proc = run(venv, "softprompt_xl.train", "+combo=lp_ta", "lang=sk", *FAST_OVERRIDES, "-m", cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:]
    shipped = f"The tiny backbone as shipped with the package: {venv_dir}"  # the wheel's copy, not built
    assert shipped in proc.stdout and "Building the tiny backbone" not in proc.stdout, proc.stdout[-3000:]
    runs = cwd / "runs"
    assert sorted(p.parent.name for p in (runs / "outputs").rglob("result.json")) == ["0_lang-prompt-sk", "1_lp_ta-sk-qa"]
    result = json.loads(next((runs / "outputs").rglob("1_lp_ta-sk-qa/result.json")).read_text())
    assert result["status"] == "complete" and set(result["metrics"]["sk"]) == {"exact_match", "f1", "unparsed"}
    assert list(cwd.iterdir()) == [runs] and list(home.iterdir()) == []

    listing = run(venv, "softprompt_xl.store", cwd=cwd)
    assert listing.returncode == 0, listing.stdout[-3000:]
    assert f"{runs / 'store'}: " in listing.stdout and "lang-prompt-sk-" in listing.stdout

    report = run(venv, "softprompt_xl.report", cwd=cwd)
    assert report.returncode == 0, report.stdout[-3000:]
    assert (runs / "reports" / "all" / "report.md").exists()
    assert list(cwd.iterdir()) == [runs] and list(home.iterdir()) == []


def test_a_users_config_dir_adds_combos_and_languages(venv, tmp_path):
    """`--config-dir DIR` puts a user's own config groups beside the package's: a new combo and a new language
    are found by the everyday command (the language composed, the combo run)."""
    user, cwd = tmp_path / "my_conf", tmp_path / "cwd"
    (user / "combo").mkdir(parents=True)
    (user / "lang").mkdir()
    cwd.mkdir()
    (tmp_path / "home").mkdir()
    # ta's copy: the run needs no language component, so one job runs the new combo
    combo = (PROJECT_DIR / "softprompt_xl/conf/combo/ta.yaml").read_text().replace("name: ta", "name: my_combo")
    (user / "combo" / "my_combo.yaml").write_text(combo)
    lang = (PROJECT_DIR / "softprompt_xl/conf/lang/sk.yaml").read_text().replace("code: sk", "code: xx")
    (user / "lang" / "xx.yaml").write_text(lang.replace("name: Slovak", "name: Mine"))
    proc = run(venv, "softprompt_xl.train", "--config-dir", str(user), "+combo=my_combo", "lang=xx", "--cfg", "job",
               cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "name: my_combo" in proc.stdout and "code: xx" in proc.stdout and "name: Mine" in proc.stdout
    proc = run(venv, "softprompt_xl.train", "--config-dir", str(user), "+combo=my_combo", "lang=sk", *FAST_OVERRIDES,
               "-m", cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:]
    result = json.loads(next((cwd / "runs" / "outputs").rglob("0_my_combo-sk-qa/result.json")).read_text())
    assert result["status"] == "complete" and result["combo"] == "my_combo"


def test_in_a_checkout_the_default_root_is_its_runs_dir(monkeypatch, tmp_path):
    from hydra import compose, initialize_config_module

    from softprompt_xl.config import CONF_MODULE

    monkeypatch.delenv("SOFTPROMPT_XL_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)  # not where the files go: the checkout's runs/ stays the default, as before
    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        assert compose("train").paths.root == str(PROJECT_DIR / "runs")
        monkeypatch.setenv("SOFTPROMPT_XL_ROOT", str(tmp_path / "mine"))  # the variable wins
        assert compose("train").paths.root == str(tmp_path / "mine")
