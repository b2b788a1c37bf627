"""Third-party browser code is committed, not fetched: every file under static/vendor/ is in its MANIFEST.json with
the sha256 it had when it was unpacked from the npm registry, with its license beside it (the Content-Security-Policy, `script-src 'self'`, keeps any other origin out; the browser
tests check that no page breaks it)."""

import hashlib
import json
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "static" / "vendor"


def test_every_vendored_file_matches_its_manifest_and_nothing_is_unlisted():
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    listed = set()
    for folder, entry in manifest.items():
        assert folder == f"{entry['package']}-{entry['version']}", "static/vendor/<name>-<version>/"
        assert entry["npm_integrity"].startswith("sha512-") and entry["license"]
        assert any(name.upper().startswith("LICENSE") for name in entry["sha256"]), f"{folder} ships its license"
        for name, digest in entry["sha256"].items():
            path = VENDOR / folder / name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{folder}/{name} changed"
            listed.add(path)
    present = {path for path in VENDOR.rglob("*") if path.is_file() and path.name != "MANIFEST.json"}
    assert present == listed, f"not in the manifest: {sorted(map(str, present - listed))}"
