"""The check before OmniBoxes processes start (roles/omniboxes/files/omniboxes_check.py): each refusal names the
cause and its fix, the link goes where the installed Playwright looks, and a run that fails leaves no state behind.
A real launch of Debian's chromium is checked by molecule/omniboxes."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "omniboxes" / "files" / "omniboxes_check.py"
spec = importlib.util.spec_from_file_location("omniboxes_check", SCRIPT)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

GOOD = {"python": "/opt/venv/bin/python", "package_dir": None, "distribution": "webgym", "version": "1.0.0",
        "extras": ["omnibox", "train", "all"], "missing": [], "playwright": "1.65.2", "playwright_dir": None}


@pytest.fixture
def package(tmp_path):
    instances = tmp_path / "omniboxes" / "node" / "instances"
    instances.mkdir(parents=True)
    (instances / "_playwright_controller.py").write_text("")
    (instances / "_page_script.js").write_text("")
    return tmp_path / "omniboxes"


def test_a_package_installed_with_its_extra_passes(package):
    assert check.check_package({**GOOD, "package_dir": str(package)}, "omnibox") == "webgym 1.0.0[omnibox]"


@pytest.mark.parametrize("change, words", [
    ({"package_dir": None}, "no omniboxes package is importable by /opt/venv/bin/python; fix: check omniboxes_source"),
    ({"distribution": None}, "is not installed as a distribution, so the extra 'omnibox' cannot have been; fix:"),
    ({"extras": ["train"]}, "webgym 1.0.0 (it provides omniboxes) declares no extra 'omnibox' (extras: train)"),
    ({"missing": ["Pillow", "psutil"]}, "webgym 1.0.0[omnibox] is installed but Pillow, psutil is missing"),
])
def test_each_package_problem_is_one_line_with_its_fix(package, change, words):
    report = {**GOOD, "package_dir": str(package), **change}
    with pytest.raises(check.CheckFailed) as failed:
        check.check_package(report, "omnibox")
    assert words in str(failed.value) and "fix:" in str(failed.value) and "\n" not in str(failed.value)


def test_a_wheel_without_the_page_script_is_refused(package):
    (package / "node" / "instances" / "_page_script.js").unlink()
    with pytest.raises(check.CheckFailed, match="lacks omniboxes/node/instances/_page_script.js.*fix: use "
                                                "omniboxes_source git or path"):
        check.check_package({**GOOD, "package_dir": str(package)}, "omnibox")


@pytest.fixture
def playwright_dir(tmp_path):
    driver = tmp_path / "playwright" / "driver" / "package"
    driver.mkdir(parents=True)
    (driver / "browsers.json").write_text(json.dumps({"browsers": [
        {"name": "chromium", "revision": "1255"}, {"name": "chromium-headless-shell", "revision": "1256"}]}))
    return tmp_path / "playwright"


def test_the_headless_shell_goes_where_the_installed_playwright_looks(playwright_dir, monkeypatch):
    monkeypatch.setattr(check.platform, "machine", lambda: "x86_64")
    path, revision = check.expected_executable({**GOOD, "playwright_dir": str(playwright_dir)}, "/opt/b")
    assert (str(path), revision) == (
        "/opt/b/chromium_headless_shell-1256/chrome-headless-shell-linux64/chrome-headless-shell", "1256")
    monkeypatch.setattr(check.platform, "machine", lambda: "aarch64")
    path, _ = check.expected_executable({**GOOD, "playwright_dir": str(playwright_dir)}, "/opt/b")
    assert path.parent.name == "chrome-headless-shell-linux-arm64"
    monkeypatch.setattr(check.platform, "machine", lambda: "riscv64")
    with pytest.raises(check.CheckFailed, match="Playwright ships no Chromium for riscv64"):
        check.expected_executable({**GOOD, "playwright_dir": str(playwright_dir)}, "/opt/b")
    with pytest.raises(check.CheckFailed, match="playwright is not installed in /opt/venv/bin/python"):
        check.expected_executable({**GOOD, "playwright": None}, "/opt/b")


def test_the_link_is_made_once_and_replaces_a_download_of_ours(tmp_path):
    browsers = tmp_path / "browsers"
    expected = browsers / "chromium_headless_shell-1256" / "chrome-headless-shell-linux64" / "chrome-headless-shell"
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    # Playwright's own download from the playwright mode before.
    expected.parent.mkdir(parents=True)
    expected.write_text("a real download")
    (expected.parent / "libsomething.so").write_text("")
    assert check.place_link(expected, str(chromium), str(browsers)) is True
    assert expected.is_symlink() and expected.resolve() == chromium
    assert not (expected.parent / "libsomething.so").exists(), "the download's files went with it"
    assert check.place_link(expected, str(chromium), str(browsers)) is False, "a second run changes nothing"
    with pytest.raises(check.CheckFailed, match="is not an executable file on this host; fix: install it, or set "
                                                "omniboxes_browser_executable"):
        check.place_link(expected, str(tmp_path / "nothing"), str(browsers))


def test_the_cause_is_the_last_error_line():
    out = "Downloading Chrome\nError: getaddrinfo ENOTFOUND cdn.playwright.dev\n    at x\n}\n"
    assert check.cause(out) == "Error: getaddrinfo ENOTFOUND cdn.playwright.dev"
    assert check.cause("E: Unable to locate package libnss3\n") == "E: Unable to locate package libnss3"
    assert check.cause("just this\n") == "just this" and check.cause("") == "no output"


def test_a_failed_check_says_one_line_exits_1_and_removes_the_old_state(tmp_path):
    state = tmp_path / "check.json"
    state.write_text("{}")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    done = subprocess.run([sys.executable, str(SCRIPT), "--python", str(venv / "bin" / "python"), "--browser",
                           "none", "--state", str(state)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout.strip().splitlines() == [
        f"omniboxes check failed: no omniboxes package is importable by {venv / 'bin' / 'python'}; fix: check "
        "omniboxes_source and the variable it names"]
    assert not state.exists(), "status must not show what an older run found"


def test_a_package_without_a_browser_passes_and_records_it(tmp_path):
    # The test double, installed as the role installs it, with its extra; mode none launches nothing.
    state = tmp_path / "check.json"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # A copy, since an editable install writes its metadata beside the source.
    double = shutil.copytree(ROOT / "tests" / "doubles" / "omniboxes", tmp_path / "double")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "-e", f"{double}[omnibox]"],
                   check=True, capture_output=True, timeout=300)
    done = subprocess.run([sys.executable, str(SCRIPT), "--python", str(venv / "bin" / "python"), "--browser",
                           "none", "--state", str(state)], capture_output=True, text=True, timeout=60)
    # --no-deps left redis out: the extra's requirement is named as missing.
    assert done.returncode == 1 and "omniboxes 0.0.0+gymfleet.testdouble[omnibox] is installed but redis is " \
                                    "missing" in done.stdout, done.stdout
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "redis>=4,<6"], check=True, capture_output=True,
                   timeout=300)
    done = subprocess.run([sys.executable, str(SCRIPT), "--python", str(venv / "bin" / "python"), "--browser",
                           "none", "--state", str(state)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip() == ("omniboxes check: package omniboxes 0.0.0+gymfleet.testdouble[omnibox]; no browser "
                                   "checked (omniboxes_browser none)")
    recorded = json.loads(state.read_text())
    assert recorded["mode"] == "none" and recorded["package"] == "omniboxes 0.0.0+gymfleet.testdouble[omnibox]"


def test_a_browser_is_launched_again_only_when_what_it_depends_on_changed(tmp_path, package, playwright_dir,
                                                                          monkeypatch):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    report = {**GOOD, "package_dir": str(package), "playwright_dir": str(playwright_dir)}
    launches = []
    monkeypatch.setattr(check, "inspect", lambda python, extra: dict(report))
    monkeypatch.setattr(check, "launch", lambda *a: launches.append(a) or {"version": "156.0", "screenshot_bytes": 9})
    monkeypatch.setattr(check.platform, "machine", lambda: "x86_64")
    state = tmp_path / "check.json"
    argv = ["--python", "/opt/venv/bin/python", "--browser", "system", "--executable", str(chromium),
            "--browsers-path", str(tmp_path / "browsers"), "--state", str(state)]
    assert check.main(argv) == 0 and len(launches) == 1, "the first run launches"
    assert check.main(argv) == 0 and len(launches) == 1, "nothing changed: no second launch"
    assert json.loads(state.read_text())["reused"] is True
    report["playwright"] = "1.66.0"
    assert check.main(argv) == 0 and len(launches) == 2, "another Playwright launches again"
    chromium.write_text("#!/bin/sh\n# upgraded\n")
    assert check.main(argv) == 0 and len(launches) == 3, "another browser file launches again"
    state.unlink()
    assert check.main(argv) == 0 and len(launches) == 4, "no record of a success launches again"
