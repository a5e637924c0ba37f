// The chain pages, /explorer/{chain,blocks,validators,checkpoints}?genesis=<hex>: the status,
// the latest blocks, the validator set and its history, and the checkpoint an auditor
// publishes; every certificate checked here (verify.mjs) against the link's genesis.

import { DecodeError } from "./msgpack.mjs";
import { clockTime, cryptoMissing, el, fetchBytes, fetchValue, fmtTime, linkGenesis, setVerdict, table } from "./page.mjs";
import { DEFAULT_MAX_AGE_MS, Refusal, checkFreshness, describeAge, fromHex, hex, setAt, trustFrom, verifyBlock, verifyCheckpoint, verifyConsistency } from "./verify.mjs";

const PAGE = location.pathname.split("/")[2] || "chain";
const BLOCKS_PER_PAGE = 10;
const TITLES = { chain: "Chain status", blocks: "Blocks", validators: "Validators", checkpoints: "Audit checkpoint" };
const content = document.getElementById("content");

function nav(genesis) {
  const links = Object.entries(TITLES).map(([page, title]) => el("a", { href: `/explorer/${page}?genesis=${genesis}` }, title));
  document.getElementById("nav").append(...links);
}

function dl(rows) {
  return el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function latest(trust, genesis) {
  const checkpoint = await verifyCheckpoint(await fetchValue("/v1/checkpoint"), trust.genesis, trust.sets, genesis);
  const ageMs = checkFreshness(checkpoint.certified, { nowMs: Date.now(), maxAgeMs: DEFAULT_MAX_AGE_MS });
  return { checkpoint, ageMs };
}

function signedBy(certified) {
  return `${certified.signers.join(", ")} (${certified.power} of ${certified.total} voting power)`;
}

async function chain(trust, genesis) {
  const { checkpoint, ageMs } = await latest(trust, genesis);
  const status = await fetchValue("/v1/status");
  const c = checkpoint.certified;
  content.append(
    el("h2", {}, "Latest certified block"),
    dl([["Chain", trust.genesis.chainId], ["Genesis", genesis], ["Height", String(c.height)], ["Block time", `${fmtTime(c.timeMs)} (${describeAge(ageMs)} old)`],
      ["Block hash", el("code", {}, hex(checkpoint.hash))], ["Signed by", signedBy(c)], ["Transactions since genesis", String(checkpoint.logSize)]]),
    el("h2", {}, "What this node says of itself (not verifiable)"),
    dl([["Node key", el("code", {}, hex(status.public_key))], ["Mempool", String(status.mempool_size)], ["Peers linked", String(Array.isArray(status.peers) ? status.peers.length : status.peers ?? "—")]]),
  );
  return `Verified: the latest block, height ${c.height} at ${clockTime(c.timeMs)}, is certified by ${c.signers.length} of ${c.count} validators`;
}

async function blocks(trust, genesis) {
  const { checkpoint } = await latest(trust, genesis);
  const asked = Number(new URLSearchParams(location.search).get("to"));
  const top = asked >= 1 && asked <= checkpoint.certified.height ? asked : checkpoint.certified.height;
  const rows = [];
  let above = null;
  let pruned = null; // a node that prunes blocks answers 410 block_pruned below its oldest
  let lowest = top + 1;
  for (let h = top; h >= Math.max(1, top - BLOCKS_PER_PAGE + 1); h--) {
    let answer;
    try {
      answer = await fetchValue(`/v1/blocks/${h}`);
    } catch (exc) {
      if (exc.status !== 410) throw exc;
      pruned = exc.message;
      break;
    }
    const block = await verifyBlock(answer, trust.genesis, trust.sets);
    if (above && hex(above.certified.header.prev_hash) !== hex(block.hash)) throw new Refusal(`block ${h + 1} does not link to block ${h}`);
    if (h === 1 && hex(block.certified.header.prev_hash) !== genesis) throw new Refusal("block 1 does not link to the genesis");
    const kinds = block.txs.map((tx) => (tx.redacted ? `${tx.kind} (withheld)` : tx.kind));
    rows.push([String(h), fmtTime(block.certified.timeMs), el("code", {}, hex(block.hash).slice(0, 16) + "…"), `${block.certified.signers.length} of ${block.certified.count}`, kinds.join(", ") || "—"]);
    above = block;
    lowest = h;
  }
  if (pruned && !rows.length) throw new Refusal(pruned);
  content.append(table(["height", "time", "hash", "signed by", "transactions"], rows));
  if (pruned) content.append(el("p", { id: "pruned" }, `Older blocks are not on this node: ${pruned}`));
  else if (top > BLOCKS_PER_PAGE) content.append(el("a", { href: `/explorer/blocks?genesis=${genesis}&to=${top - BLOCKS_PER_PAGE}` }, "older blocks"));
  return `Verified: blocks ${lowest}–${top}, each certified by more than 2/3 of its validators, linked by hash, their transactions making each tx root`;
}

async function validators(trust, genesis) {
  const { checkpoint } = await latest(trust, genesis);
  const height = checkpoint.certified.height;
  const { vs } = setAt(trust.sets, height);
  const rows = vs.list.map((v) => [v.name, String(v.power), el("code", {}, hex(v.public_key))]);
  content.append(el("h2", {}, `The set in force at height ${height}`), table(["validator", "power", "public key"], rows));
  const changes = trust.sets.slice(1).map((s) => [String(s.from), s.vs.list.map((v) => `${v.name} (${v.power})`).join(", ")]);
  content.append(el("h2", {}, "Certified changes since genesis"), changes.length ? table(["in force from height", "validators"], changes) : el("p", {}, "none: the genesis set"));
  return `Verified: ${trust.sets.length - 1} certified change(s) since genesis; the latest block is certified by this set (${checkpoint.certified.signers.length} of ${vs.byKey.size})`;
}

async function checkpoints(trust, genesis) {
  const { checkpoint } = await latest(trust, genesis);
  const c = checkpoint.certified;
  const publish = { chain_id: trust.genesis.chainId, genesis_hash: genesis, height: c.height, block_hash: hex(checkpoint.hash), log_size: checkpoint.logSize, log_root: hex(checkpoint.logRoot) };
  const again = `/explorer/checkpoints?genesis=${genesis}&old_size=${checkpoint.logSize}&old_root=${hex(checkpoint.logRoot)}`;
  content.append(
    dl([["Height", String(c.height)], ["Block time", fmtTime(c.timeMs)], ["Log size", String(checkpoint.logSize)], ["Log root", el("code", {}, hex(checkpoint.logRoot))], ["Signed by", signedBy(c)]]),
    el("p", {}, "Publish this; later, this page checks that the ledger extends it: ", el("a", { href: again }, "this checkpoint's link"), " (or cityledger audit consistency)."),
    el("pre", { id: "checkpoint" }, JSON.stringify(publish, null, 2)),
  );
  const line = `Verified: checkpoint at height ${c.height} (log of ${checkpoint.logSize} transactions), certified by ${c.signers.length} of ${c.count} validators`;
  const asked = new URLSearchParams(location.search);
  if (!asked.has("old_size")) return line;
  const oldSize = Number(asked.get("old_size"));
  if (!Number.isSafeInteger(oldSize) || oldSize < 0 || !/^[0-9a-f]{64}$/i.test(asked.get("old_root") || "")) throw new Refusal("the link's old_size or old_root is malformed");
  const answer = await fetchValue("/v1/log/consistency", { old: oldSize });
  const { newSize } = await verifyConsistency(answer, trust.genesis, trust.sets, oldSize, fromHex(asked.get("old_root").toLowerCase()));
  content.prepend(el("p", { id: "extends" }, `Today's log of ${newSize} transactions extends your checkpoint's log of ${oldSize}: nothing in it was rewritten.`));
  return `${line}; it extends your checkpoint of ${oldSize} transactions`;
}

async function main() {
  document.getElementById("title").textContent = TITLES[PAGE] || "Chain";
  const genesis = linkGenesis();
  if (!genesis) return setVerdict(false, "NOT verified: the link names no genesis hash (?genesis=<64 hex digits>)");
  nav(genesis);
  const missing = cryptoMissing();
  if (missing) return setVerdict(false, `NOT verified: ${missing}`);
  try {
    const trust = await trustFrom(await fetchBytes("/v1/genesis"), genesis, await fetchValue("/v1/validators"));
    const view = { chain, blocks, validators, checkpoints }[PAGE] || chain;
    setVerdict(true, await view(trust, genesis));
  } catch (exc) {
    if (!(exc instanceof Refusal) && !(exc instanceof DecodeError)) throw exc;
    content.replaceChildren();
    setVerdict(false, `NOT verified: ${exc.message}`);
  }
}

main().catch((exc) => setVerdict(false, `NOT verified: the page failed: ${exc.message}`));
