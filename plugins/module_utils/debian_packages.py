"""Debian packages a module needs on the host: which are missing, and installing them with apt-get."""

from __future__ import annotations


class PackageError(Exception):
    """A package list that cannot be installed, with the fix in the message."""


def missing_packages(names: list[str], run) -> list[str]:
    """The packages dpkg does not have installed, in the order given."""
    if not names:
        return []
    if any("=" in name or " " in name for name in names):
        raise PackageError(f"packages {names}: give package names only; fix: drop the version or the spaces")
    # dpkg-query exits 1 when it knows some name not at all; the others are still listed.
    _, out, _ = run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *names])
    installed = {fields[0] for fields in (line.split() for line in out.splitlines()) if fields[1:2] == ["ii"]}
    return [name for name in names if name.split(":")[0] not in installed]


def install_packages(names: list[str], run) -> None:
    environ = {"DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *names]):
        rc, _, err = run(argv, environ_update=environ)
        if rc != 0:
            last = (err.strip().splitlines() or ["no output"])[-1]
            raise PackageError(f"packages {', '.join(names)}: {' '.join(argv[:2])} failed: {last}; fix: check that the "
                              "host's APT sources reach these packages and that the names are right")
