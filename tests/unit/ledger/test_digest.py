"""``ledger.digest.sha256_digest``: the same bytes as ``hashlib`` in both of its forms.

The process runs one form: the C twin when the build is current (``make test``,
``make test-compiled``, CI), else the pure module. The pure module is also loaded here
from its own file under another name, so a compiled run checks both.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ledger.digest
from ledger import compiled


def _pure_form() -> Callable[[bytes], bytes]:
    path = Path(ledger.digest.__file__).resolve().parent / "digest.py"
    spec = importlib.util.spec_from_file_location("ledger_digest_pure", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.sha256_digest  # type: ignore[no-any-return]


FORMS = [_pure_form(), ledger.digest.sha256_digest]


@given(data=st.binary(max_size=300))
def test_every_form_is_hashlibs_sha256(data: bytes) -> None:
    expected = hashlib.sha256(data).digest()
    for digest in FORMS:
        assert digest(data) == expected


@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1 << 20])
def test_sizes_around_the_block_boundaries(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    for digest in FORMS:
        assert digest(data) == hashlib.sha256(data).digest()


def test_any_bytes_like_object_and_nothing_else() -> None:
    for digest in FORMS:
        assert digest(bytearray(b"abc")) == digest(memoryview(b"xabc")[1:]) == digest(b"abc")
        with pytest.raises(TypeError):
            digest("abc")  # type: ignore[arg-type]


def test_the_c_twin_is_loaded_when_it_was_built() -> None:
    assert compiled.is_compiled(ledger.digest) == ("ledger/digest.c" in compiled.built_sources())
