"""Every permit answer carries the permit's whole history, which a client verifies."""

from __future__ import annotations

import pytest

from lightclient.errors import VerificationError
from lightclient.permits import verify_permit
from tests.unit.node.api.conftest import PERMIT, PERMIT_FROM, Client, TestNode, get_obj


@pytest.mark.parametrize("path", [f"/v1/permits/{PERMIT}", f"/v1/permits/{PERMIT}/validity"])
async def test_permit_answers_verify_with_their_whole_history(
    client: Client, node: TestNode, path: str
) -> None:
    status, answer = await get_obj(client, f"{path}?at={PERMIT_FROM}")
    assert status == 200 and isinstance(answer, dict)
    view = verify_permit(answer, node.genesis, PERMIT)
    assert [e.action for e in view.history] == ["applied", "reviewed", "approved", "issued"]
    answer["history"] = answer["history"][:-1]  # type: ignore[index]
    cut = r"the permit record says 4 history entries, the node sent 3 \(truncated or padded"
    with pytest.raises(VerificationError, match=cut):
        verify_permit(answer, node.genesis, PERMIT)
