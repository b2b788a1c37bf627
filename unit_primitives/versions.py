"""GitLab version strings, compared the way GitLab's own VersionInfo does: numerically, suffixes ignored."""

import re

_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """`"17.11.0-ee"` → (17, 11, 0); `"17.10"` → (17, 10, 0); anything unparseable → None (unknown)."""
    if not text:
        return None
    match = _VERSION.match(text)
    if not match:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def version_at_least(version: tuple[int, int, int] | None, minimum: tuple[int, int, int] | None) -> bool:
    """No gate passes everything; a gate is never passed by an unknown version."""
    if minimum is None:
        return True
    return version is not None and version >= minimum
