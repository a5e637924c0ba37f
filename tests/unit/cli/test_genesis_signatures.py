"""Founders sign the draft in parallel: ``genesis sign --out`` writes a detached signature
and leaves the draft as it is; ``genesis add-signature`` adds them in any order, checks
each first, and one bad file adds nothing."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

from tests.unit.cli.kit import message, run
from tests.unit.cli.test_genesis_cmd import _founded, _one_line_error, _sign


def _detach(draft: Path, home: Path, org: str, out: Path) -> None:
    key = str(home / "keys" / f"{org}-admin.json")
    result = run(["genesis", "sign", str(draft), "--key", key, "--out", str(out)])
    assert result.exit_code == 0, message(result)


def _signed_in_parallel(tmp: Path) -> tuple[Path, list[Path]]:
    """The draft, and the four agencies' detached signatures, each of its own copy."""
    draft, homes = _founded(tmp)
    before = draft.read_bytes()
    sigs = []
    for i, home in enumerate(homes):
        copy = tmp / f"copy-{i}.json"  # what agency i received
        shutil.copyfile(draft, copy)
        sigs.append(tmp / f"agency-{i}.sig.json")
        _detach(copy, home, f"agency-{i}", sigs[-1])
        assert copy.read_bytes() == before, "--out leaves the draft as it is"
    return draft, sigs


def test_signatures_made_in_parallel_combine_in_any_order_to_one_file(tmp_path: Path) -> None:
    draft, sigs = _signed_in_parallel(tmp_path)
    results = set()
    for n, order in enumerate(itertools.islice(itertools.permutations(sigs), 0, 24, 7)):
        combined = tmp_path / f"combined-{n}.json"
        shutil.copyfile(draft, combined)
        done = run(["genesis", "add-signature", str(combined), *map(str, order)])
        assert done.exit_code == 0, message(done)
        results.add(combined.read_bytes())
    assert len(results) == 1, "the same signatures make the same file in any order"
    ok = run(["genesis", "verify", str(tmp_path / "combined-0.json")])
    assert ok.exit_code == 0 and "this genesis can found the network" in ok.output
    sequential, homes = tmp_path / "sequential.json", [tmp_path / f"agency-{i}" for i in range(4)]
    shutil.copyfile(draft, sequential)
    for i in (2, 0, 3, 1):
        _sign(sequential, homes[i], f"agency-{i}")
    assert sequential.read_bytes() in results, "in place, one after another: the same file"


def test_a_signature_of_an_older_draft_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    draft, sigs = _signed_in_parallel(tmp_path)
    doc = json.loads(draft.read_text())
    doc["genesis_time_ms"] += 1  # the coordinator re-assembled: another hash
    draft.write_text(json.dumps(doc))
    before = draft.read_bytes()
    result = run(["genesis", "add-signature", str(draft), *map(str, sigs)])
    line = _one_line_error(message(result))
    assert result.exit_code == 1 and "agency-0.sig.json signs genesis" in line
    assert "sign the current draft" in line and draft.read_bytes() == before


def test_a_forged_or_relabelled_signature_adds_nothing(tmp_path: Path) -> None:
    draft, sigs = _signed_in_parallel(tmp_path)
    before = draft.read_bytes()
    forged = json.loads(sigs[1].read_text())
    forged["signature"] = json.loads(sigs[2].read_text())["signature"]
    relabelled = json.loads(sigs[1].read_text()) | {"org": "agency-2"}
    cases = {"forged": (forged, "does not verify"), "relabelled": (relabelled, "not an admin")}
    for name, (doc, why) in cases.items():
        bad = tmp_path / f"{name}.sig.json"
        bad.write_text(json.dumps(doc))
        result = run(["genesis", "add-signature", str(draft), str(sigs[0]), str(bad)])
        line = _one_line_error(message(result))
        assert result.exit_code == 1 and f"{name}.sig.json" in line and why in line, line
        assert draft.read_bytes() == before, "the good signature before it was not added"


def test_a_malformed_signature_file_is_one_line(tmp_path: Path) -> None:
    draft, sigs = _signed_in_parallel(tmp_path)
    before = draft.read_bytes()
    doc = json.loads(sigs[0].read_text())
    for name, text in {
        "not-json": "{",
        "extra-key": json.dumps(doc | {"note": "hi"}),
        "short-hash": json.dumps(doc | {"genesis_hash": "abcd"}),
        "huge": " " * 5000 + json.dumps(doc),
    }.items():
        bad = tmp_path / f"{name}.json"
        bad.write_text(text)
        result = run(["genesis", "add-signature", str(draft), str(bad)])
        assert result.exit_code == 1 and f"{name}.json" in _one_line_error(message(result))
    assert draft.read_bytes() == before


def test_sign_out_refuses_to_overwrite(tmp_path: Path) -> None:
    draft, homes = _founded(tmp_path)
    out = tmp_path / "taken.json"
    out.write_text("mine")
    key = str(homes[0] / "keys" / "agency-0-admin.json")
    result = run(["genesis", "sign", str(draft), "--key", key, "--out", str(out)])
    assert result.exit_code == 1 and out.read_text() == "mine"
