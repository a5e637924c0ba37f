"""The shared vectors (permit page and blocks page answers): the Python verifier and the
browser's (under ``node``) reach the verdict each vector expects, from the same bytes; the
browser's msgpack codec makes the Python encoder's bytes; and the vector files are what the
generator makes today."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ledger.encoding import Value, decode, encode
from ledger.errors import DecodeError
from tests.unit.explorer import make_vectors
from tests.unit.explorer.page_check import check_vector

DIR = make_vectors.DIR
VERDICT_VECTORS = sorted(p for p in DIR.glob("*.json") if p.name != "encoding.json")
RUNNER = Path(__file__).with_name("run_vectors.mjs")
NODE = shutil.which("node")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def check_against(expect: dict[str, Any], verified: bool, reason: str, valid: Any) -> None:
    assert verified is expect["verified"], reason
    assert expect["reason"] in reason, reason
    if verified:
        assert valid is expect["valid"], reason


def test_there_are_valid_and_tampered_vectors() -> None:
    verdicts = [load(p)["expect"]["verified"] for p in VERDICT_VECTORS]
    assert verdicts.count(True) >= 3 and verdicts.count(False) >= 10


@pytest.mark.parametrize("path", VERDICT_VECTORS, ids=lambda p: p.stem)
def test_python_verifier(path: Path) -> None:
    vector = load(path)
    verdict = check_vector(vector)
    check_against(vector["expect"], verdict.verified, verdict.reason, verdict.valid)


def test_browser_verifier_under_node() -> None:
    if NODE is None:
        if os.environ.get("CITYLEDGER_REQUIRE_BROWSER") == "1":
            pytest.fail("node is not installed, and CITYLEDGER_REQUIRE_BROWSER=1 needs it")
        pytest.skip("node (Node.js) is not installed: .ci/run installs it")
    run = subprocess.run(
        [NODE, str(RUNNER), str(DIR)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    results = {r["name"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert results.pop("encoding")["failures"] == []
    assert sorted(results) == sorted(load(p)["name"] for p in VERDICT_VECTORS)
    for path in VERDICT_VECTORS:
        vector, got = load(path), results[load(path)["name"]]
        check_against(vector["expect"], got["verified"], got["reason"], got["valid"])


def build(typed: Any) -> Value:
    if typed is None or isinstance(typed, bool | str):
        return typed
    if isinstance(typed, list):
        return [build(t) for t in typed]
    if "int" in typed:
        return int(typed["int"])
    if "bytes" in typed:
        return bytes.fromhex(typed["bytes"])
    return {k: build(v) for k, v in typed["map"]}


def test_python_codec_over_encoding_vectors() -> None:
    vectors = load(DIR / "encoding.json")
    for item in vectors["values"]:
        assert encode(build(item["typed"])).hex() == item["hex"]
        assert decode(bytes.fromhex(item["hex"])) == build(item["typed"])
    for item in vectors["refused"]:
        with pytest.raises(DecodeError):
            decode(bytes.fromhex(item["hex"]))


def test_vector_files_are_current(tmp_path: Path) -> None:
    """The checked-in vectors are what the generator makes from today's code (rerun
    ``python -m tests.unit.explorer.make_vectors`` after changing the formats)."""
    for path in make_vectors.write(tmp_path):
        assert path.read_text() == (DIR / path.name).read_text(), path.name
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in DIR.glob("*.json")}
