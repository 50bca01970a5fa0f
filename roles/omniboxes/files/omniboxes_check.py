#!/usr/bin/python3
"""gymfleet's check before OmniBoxes processes start (unit omniboxes-check), run as root by the system Python.

Installed by the gymfleet.cluster.omniboxes role. It asks the servers' Python environment:
  - which distribution provides the omniboxes package, whether it declares the extra gymfleet installs
    (upstream's `omnibox`) and whether that extra's requirements are installed;
  - whether the package holds the files its code reads (upstream's setup.py ships no _page_script.js in a
    wheel, so a non-editable install of it cannot drive a page).
With --browser (a worker), it then puts a Chromium where the installed Playwright looks under
PLAYWRIGHT_BROWSERS_PATH (Playwright's own download, or a link to a system or given executable) and launches
it once, as the user the instance servers run as, rendering one page; a later run whose package, Playwright
and browser file are the same as at the last successful launch does not launch it again. The result goes to
--state (JSON, read by `gymfleet status`) and to the journal as one line; a failure is one line with its fix,
and exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import pwd
import subprocess
import sys
import time
from pathlib import Path

# Run by the environment's Python: what it has installed, as JSON.
INSPECT = r"""
import importlib.metadata as metadata, importlib.util, json, os, re, sys
extra = sys.argv[1]
report = {"python": sys.executable}
spec = importlib.util.find_spec("omniboxes")
report["package_dir"] = os.path.dirname(spec.origin) if spec and spec.origin else None
names = metadata.packages_distributions().get("omniboxes", [])
if names:
    dist = metadata.distribution(names[0])
    report["distribution"] = dist.metadata["Name"]
    report["version"] = dist.version
    report["extras"] = dist.metadata.get_all("Provides-Extra") or []
    wanted = [r for r in dist.requires or [] if re.search(r"extra\s*==\s*['\"]%s['\"]" % re.escape(extra), r)]
    missing = []
    for requirement in wanted:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    report["missing"] = missing
try:
    report["playwright"] = metadata.version("playwright")
    import playwright
    report["playwright_dir"] = os.path.dirname(playwright.__file__)
except (metadata.PackageNotFoundError, ImportError):
    report["playwright"] = None
print(json.dumps(report))
"""

# Run by the environment's Python as the servers' user: Playwright launches its Chromium as upstream's instance
# servers do (chromium.launch(), headless) and renders one page.
LAUNCH = r"""
import json, sys
from playwright.sync_api import sync_playwright
try:
    with sync_playwright() as p:
        browser = p.chromium.launch(timeout=float(sys.argv[1]) * 1000)
        page = browser.new_page(viewport={"width": 320, "height": 200})
        page.set_content("<p>gymfleet</p>")
        png = page.screenshot()
        print(json.dumps({"version": browser.version, "screenshot_bytes": len(png)}))
        browser.close()
except Exception as exc:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines[1:] if "error" in line.lower() or "cannot" in line.lower()]
    print(json.dumps({"error": "; ".join((lines[:1] + causes[:2]) or [type(exc).__name__])}))
"""

# Where Playwright looks for its headless shell, per machine (its registry's table).
HEADLESS_SHELL_DIRS = {"x86_64": "chrome-headless-shell-linux64", "aarch64": "chrome-headless-shell-linux-arm64"}


class CheckFailed(Exception):
    """One line: what is wrong and its fix."""


def cause(output: str) -> str:
    """The line of a program's output that names what went wrong: its last error line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("error", "e:"))]
    return (errors or lines or ["no output"])[-1]


def inspect(python: str, extra: str) -> dict:
    done = subprocess.run([python, "-c", INSPECT, extra], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckFailed(f"{python} could not be asked what it has installed: {last}; fix: remove the environment "
                          "and deploy again")
    return json.loads(done.stdout)


def check_package(report: dict, extra: str) -> str:
    """Raises CheckFailed unless the package is installed with its extra and the files its code reads."""
    python = report["python"]
    if not report.get("package_dir"):
        raise CheckFailed(f"no omniboxes package is importable by {python}; fix: check omniboxes_source and the "
                          "variable it names")
    if not report.get("distribution"):
        raise CheckFailed(f"omniboxes at {report['package_dir']} is not installed as a distribution, so the extra "
                          f"'{extra}' cannot have been; fix: install it with omniboxes_source git, path or pip")
    name = f"{report['distribution']} {report['version']}"
    if extra not in report["extras"]:
        declared = ", ".join(report["extras"]) or "none"
        raise CheckFailed(f"{name} (it provides omniboxes) declares no extra '{extra}' (extras: {declared}), so "
                          "upstream's server requirements were not installed; fix: point omniboxes_source at a "
                          f"webgym whose setup.py has extras_require['{extra}']")
    if report["missing"]:
        raise CheckFailed(f"{name}[{extra}] is installed but {', '.join(report['missing'])} is missing from "
                          f"{python}; fix: deploy again, or add them to omniboxes_python_packages")
    package = Path(report["package_dir"])
    controller = package / "node" / "instances" / "_playwright_controller.py"
    if controller.exists() and not (controller.parent / "_page_script.js").exists():
        raise CheckFailed(f"{name} lacks omniboxes/node/instances/_page_script.js, which its Playwright controller "
                          "reads (a wheel built from upstream's setup.py leaves it out); fix: use omniboxes_source "
                          "git or path, which install the package editable from its source")
    return f"{name}[{extra}]"


def expected_executable(report: dict, browsers_path: str) -> tuple[Path, str]:
    """The headless shell's path Playwright expects, and its revision, from the installed Playwright."""
    if not report.get("playwright"):
        raise CheckFailed(f"playwright is not installed in {report['python']}; fix: the omnibox extra installs it, "
                          "so check omniboxes_source")
    browsers = json.loads((Path(report["playwright_dir"]) / "driver" / "package" / "browsers.json").read_text())
    revision = next(b["revision"] for b in browsers["browsers"] if b["name"] == "chromium-headless-shell")
    machine = platform.machine()
    if machine not in HEADLESS_SHELL_DIRS:
        raise CheckFailed(f"Playwright ships no Chromium for {machine}; fix: run the instance servers on x86_64 "
                          "or aarch64 hosts")
    leaf = Path(HEADLESS_SHELL_DIRS[machine]) / "chrome-headless-shell"
    return Path(browsers_path) / f"chromium_headless_shell-{revision}" / leaf, revision


def place_link(expected: Path, target: str, browsers_path: str) -> bool:
    """Link the expected path to target; True when it changed. The directory under browsers_path is gymfleet's."""
    if not os.access(target, os.X_OK):
        raise CheckFailed(f"the browser {target} is not an executable file on this host; fix: install it, or set "
                          "omniboxes_browser_executable to Chromium's path")
    if expected.is_symlink() and os.readlink(expected) == target:
        return False
    revision_dir = expected.parent.parent
    if revision_dir.exists() and not revision_dir.is_symlink() and Path(browsers_path) in revision_dir.parents:
        # A download of Playwright's own (the playwright mode before), replaced by the link.
        subprocess.run(["rm", "-rf", "--", str(revision_dir)], check=True)
    expected.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    expected.symlink_to(target)
    return True


def playwright_install(python: str, browsers_path: str, expected: Path, timeout: float) -> bool:
    """Playwright's own download (and its system dependencies) when its headless shell is not there yet."""
    if expected.exists():
        return False
    done = subprocess.run([python, "-m", "playwright", "install", "--with-deps", "chromium"],
                          env={**os.environ, "PLAYWRIGHT_BROWSERS_PATH": browsers_path},
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not expected.exists():
        raise CheckFailed(f"playwright install --with-deps chromium failed: {cause(done.stdout + done.stderr)}; "
                          "fix: let the host reach Playwright's download servers, or set omniboxes_browser to system "
                          "(Debian's chromium)")
    return True


def launch(python: str, user: str, browsers_path: str, timeout: float) -> dict:
    account = pwd.getpwnam(user)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": account.pw_dir, "PLAYWRIGHT_BROWSERS_PATH": browsers_path}
    done = subprocess.run([python, "-c", LAUNCH, str(timeout)], capture_output=True, text=True, env=env,
                          user=account.pw_uid, group=account.pw_gid, extra_groups=[], cwd=account.pw_dir,
                          timeout=timeout + 30)
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        answer = {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    if "error" in answer:
        raise CheckFailed(f"Playwright could not launch Chromium as {user}: {answer['error']}; fix: check "
                          "omniboxes_browser (and omniboxes_browser_executable); `journalctl -u omniboxes-check` "
                          "on the host has this run")
    return answer


def fingerprint(report: dict, args, expected: Path) -> str:
    """What a launch depends on: the package and Playwright installed, the mode, the user, and the browser's file
    (its path and, through its size and time, its content)."""
    target = os.path.realpath(expected)
    try:
        stat = os.stat(target)
        browser = [target, stat.st_size, stat.st_mtime_ns]
    except OSError:
        browser = [target]
    keys = ("distribution", "version", "extras", "missing", "playwright", "package_dir")
    text = json.dumps([{k: report.get(k) for k in keys}, args.browser, args.user, str(expected), browser])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def last_success(state: str | None) -> dict:
    try:
        return json.loads(Path(state).read_text()) if state else {}
    except (OSError, ValueError):
        return {}


def run(args) -> dict:
    report = inspect(args.python, args.extra)
    result = {"package": check_package(report, args.extra), "mode": args.browser}
    if args.browser == "none":
        return result
    expected, revision = expected_executable(report, args.browsers_path)
    if args.browser == "playwright":
        changed = playwright_install(args.python, args.browsers_path, expected, args.install_timeout)
    else:
        changed = place_link(expected, args.executable, args.browsers_path)
    result.update(playwright=report["playwright"], revision=revision, executable=str(expected),
                  target=os.path.realpath(expected), changed=changed, fingerprint=fingerprint(report, args, expected))
    before = last_success(args.state)
    if not changed and before.get("fingerprint") == result["fingerprint"] and before.get("version"):
        # The same browser launched for the same package and Playwright before (each restart runs this): once
        # is enough, and every launch costs a Chromium and a Playwright driver on the host.
        return {**result, "version": before["version"], "launch_seconds": before.get("launch_seconds"),
                "launched_at": before.get("launched_at"), "reused": True}
    started = time.monotonic()
    answer = launch(args.python, args.user, args.browsers_path, args.timeout)
    return {**result, "version": answer["version"], "launch_seconds": round(time.monotonic() - started, 2),
            "launched_at": time.time(), "reused": False}


def summary(result: dict) -> str:
    if result["mode"] == "none":
        return f"package {result['package']}; no browser checked (omniboxes_browser none)"
    launched = (f"launched at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(result['launched_at']))}, nothing "
                "changed since" if result["reused"] else f"launched in {result['launch_seconds']} s")
    return (f"Chromium {result['version']} ({result['mode']}: {result['target']}) at {result['executable']} for "
            f"Playwright {result['playwright']}, {launched}; package {result['package']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True, help="the servers' Python environment's interpreter")
    parser.add_argument("--extra", default="omnibox", help="the extra the package was installed with")
    parser.add_argument("--browser", choices=["playwright", "system", "path", "none"], default="none")
    parser.add_argument("--executable", default="", help="the Chromium to link (modes system and path)")
    parser.add_argument("--browsers-path", default="", help="PLAYWRIGHT_BROWSERS_PATH of the instance servers")
    parser.add_argument("--user", default="omniboxes", help="who launches the browser")
    parser.add_argument("--timeout", type=float, default=60, help="seconds for one launch")
    parser.add_argument("--install-timeout", type=float, default=600, help="seconds for Playwright's download")
    parser.add_argument("--state", help="where to write the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (CheckFailed, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as exc:
        print(f"omniboxes check failed: {exc}", flush=True)
        if args.state:
            Path(args.state).unlink(missing_ok=True)
        return 1
    result["checked_at"] = time.time()
    if args.state:
        Path(args.state).write_text(json.dumps(result) + "\n")
    print(f"omniboxes check: {summary(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
