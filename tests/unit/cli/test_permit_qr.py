"""``cityledger permit qr``: the code opens the permit's explorer page with the genesis hash,
read back from the PNG as a phone would (zxing-cpp); bad input changes nothing."""

from __future__ import annotations

from pathlib import Path

from ledger.genesis import Genesis
from node.api.explorer_link import qr_bytes
from tests.unit.cli.kit import run

NODE = "https://permits.example.org:8443"


def test_print_url_names_the_page_and_the_genesis(genesis_file: str) -> None:
    result = run(["permit", "qr", "BLD-1", "--node", NODE, "--genesis", genesis_file,
                  "--print-url"])  # fmt: skip
    assert result.exit_code == 0, result.output
    genesis = Genesis.load(genesis_file).hash.hex()
    assert result.output == f"{NODE}/explorer/permits/BLD-1?genesis={genesis}\n"


def test_png_decodes_to_the_url(genesis_file: str, tmp_path: Path) -> None:
    import zxingcpp
    from PIL import Image

    out = tmp_path / "notice.png"
    result = run(["permit", "qr", "BLD-1", "--node", NODE, "--genesis", genesis_file,
                  "--out", str(out), "--print-url"])  # fmt: skip
    assert result.exit_code == 0, result.output
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(out))]
    assert decoded == [result.output.strip()]


def test_svg_is_the_same_code(genesis_file: str, tmp_path: Path) -> None:
    out = tmp_path / "notice.svg"
    args = ["permit", "qr", "BLD-1", "--node", NODE, "--genesis", genesis_file]
    assert run([*args, "--out", str(out)]).exit_code == 0
    url = run([*args, "--print-url"]).output.strip()
    assert out.read_bytes() == qr_bytes(url, "svg")
    assert out.read_bytes().startswith(b"<svg")


def test_bad_input_is_one_line_and_writes_nothing(genesis_file: str, tmp_path: Path) -> None:
    base = ["permit", "qr", "--genesis", genesis_file]
    cases = {
        "must end in .svg or .png": ["BLD-1", "--out", str(tmp_path / "x.jpg")],
        "is not a permit id": ["bad id", "--out", str(tmp_path / "x.svg")],
        "give --out": ["BLD-1"],
        "must be an http(s) URL": ["BLD-1", "--node", "ftp://x", "--out", str(tmp_path / "y.png")],
    }
    for message, args in cases.items():
        result = run([*base, *args])
        assert result.exit_code == 1 and message in result.output, result.output
    assert list(tmp_path.iterdir()) == [Path(genesis_file)]
