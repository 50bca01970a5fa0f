"""Find the Debian mirrors that this host's own APT sources name, in one-line or deb822 form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class Mirrors:
    archive: str
    security: str | None


def _one_line_entries(text: str):
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        words = _drop_options(words[1:])
        if len(words) >= 2:
            yield words[0], words[1]


def _drop_options(words: list[str]) -> list[str]:
    out, inside = [], False
    for word in words:
        if word.startswith("["):
            inside = True
        if not inside:
            out.append(word)
        if word.endswith("]"):
            inside = False
    return out


def _deb822_entries(text: str):
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                yield uri, suite


def _entries(apt_dir: Path):
    main = apt_dir / "sources.list"
    if main.is_file():
        yield from _one_line_entries(main.read_text())
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                yield from _one_line_entries(path.read_text())
            elif path.suffix == ".sources":
                yield from _deb822_entries(path.read_text())


def host_mirrors(release: str, apt_dir: Path = APT_DIR) -> Mirrors | None:
    """The archive (suite == release) and security (release-security) mirrors the host uses, if any."""
    archive = security = None
    for uri, suite in _entries(apt_dir):
        if suite == release and archive is None:
            archive = uri.rstrip("/")
        elif suite == f"{release}-security" and security is None:
            security = uri.rstrip("/")
    return Mirrors(archive, security) if archive else None


def deb822_for_image(release: str, mirrors: Mirrors) -> str:
    """A sources file for the lab image that uses the same mirrors as the host."""
    text = (
        f"Types: deb\nURIs: {mirrors.archive}\nSuites: {release} {release}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    if mirrors.security:
        text += (
            f"\nTypes: deb\nURIs: {mirrors.security}\nSuites: {release}-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    return text
