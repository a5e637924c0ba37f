"""The bundled read options (cli/read_source.py): every read command gets the same
--node/--genesis/--key/--max-age, checked the same way, and sees them as one Source."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.read_source import PageAsk, Source, paging_options, source_options
from lightclient.search import Paging
from tests.unit.cli.kit import CliNode, ServerThread, run, write_keys

seen: list[Source] = []


@click.command()
@click.argument("what")
@source_options("Key that signs.")
def signed_read(what: str, source: Source) -> None:
    seen.append(source)


@click.command()
@source_options()
def public_read(source: Source) -> None:
    seen.append(source)


def test_the_options_reach_the_command_as_one_source(tmp_path: Path) -> None:
    genesis, key = tmp_path / "genesis.json", tmp_path / "k.json"
    genesis.write_text("{}")
    key.write_text("{}")
    seen.clear()
    args = ["x", "--node", "http://127.0.0.1:1", "--genesis", str(genesis), "--key", str(key)]
    result = CliRunner().invoke(signed_read, [*args, "--max-age", "5"], env={})
    assert result.exit_code == 0, result.output
    assert seen == [Source("http://127.0.0.1:1", str(genesis), str(key), 5.0)]


def test_a_public_read_has_no_key_option_and_reads_unsigned(tmp_path: Path) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text("{}")
    seen.clear()
    env = {"CITYLEDGER_GENESIS": str(genesis), "CITYLEDGER_MAX_AGE": "7"}
    assert CliRunner().invoke(public_read, [], env=env).exit_code == 0
    assert seen[0].key_path is None and seen[0].max_age_s == 7.0
    refused = CliRunner().invoke(public_read, ["--key", str(genesis)], env=env)
    assert refused.exit_code == 2 and "No such option '--key'" in refused.output


def test_a_usage_error_is_said_before_the_genesis_file_is_read(
    server: ServerThread, tmp_path: Path
) -> None:
    broken = tmp_path / "genesis.json"
    broken.write_text("not json")
    result = run(["permit", "list", "--node", server.url, "--genesis", str(broken)])
    assert result.exit_code == 1
    assert "give exactly one of --holder, --address" in result.output


def test_the_source_signs_with_its_key_and_checks_the_chain(
    server: ServerThread, node: CliNode, genesis_file: str, tmp_path: Path
) -> None:
    key = write_keys(str(tmp_path), ["officer"])["officer"]
    reads = Source(server.url, genesis_file, key, 60.0).reads()
    assert reads.genesis.hash == node.genesis.hash
    assert reads.client.key is not None
    assert Source(server.url, genesis_file, None, 60.0).reads().client.key is None


def test_the_paging_options_reach_the_command_as_one_page() -> None:
    pages: list[PageAsk] = []

    @click.command()
    @paging_options()
    def search(page: PageAsk) -> None:
        pages.append(page)

    assert CliRunner().invoke(search, ["--after", "3", "--height", "9"]).exit_code == 0
    assert CliRunner().invoke(search, []).exit_code == 0
    assert pages == [PageAsk(100, 3, 9), PageAsk(100, None, None)]
    assert pages[0].params() == {"limit": 100, "after": 3, "height": 9}
    assert pages[1].paging() == Paging(0, 100)
    assert CliRunner().invoke(search, ["--after", "3"]).exit_code == 0
    assert pages[-1].after == 3  # checked when the command asks for the page:
    with pytest.raises(SystemExit):
        pages[-1].paging()
