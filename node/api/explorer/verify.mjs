// The browser's light client: the checks of lightclient/ (headers.py, records.py,
// permits.py, validator_history.py, answers.py) over the node's msgpack answers.
//
// Pure functions of bytes and a clock value: the page (permit.mjs) fetches, this module
// judges, and `node` runs the same module over tests/vectors/explorer/ (the vectors the
// Python verifier runs too), so the two cannot drift. Every refusal is a Refusal whose
// message names what did not check out, in the words the Python verifier uses.

import { DecodeError, decode, encode, equalBytes, isMap } from "./msgpack.mjs";

export const DEFAULT_MAX_AGE_MS = 60_000; // the CLI's --max-age default
const utf8 = new TextEncoder();
const VOTE_TAG = utf8.encode("cityledger/v1/vote\0");
const PRECOMMIT = 2;
const EMPTY = new Uint8Array(32);

export class Refusal extends Error {}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (typeof text !== "string" || !/^([0-9a-f]{2})*$/i.test(text)) throw new Refusal(`not hex: ${text}`);
  return Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

function field(obj, name, what) {
  if (!isMap(obj) || !Object.hasOwn(obj, name)) throw new Refusal(`${what} has no ${name}`);
  return obj[name];
}

function bytesField(obj, name, what, size) {
  const value = field(obj, name, what);
  if (!(value instanceof Uint8Array) || (size !== undefined && value.length !== size)) {
    throw new Refusal(`${what}: ${name} is malformed`);
  }
  return value;
}

function intField(obj, name, what) {
  const value = field(obj, name, what);
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new Refusal(`${what}: ${name} is malformed`);
  }
  return value;
}

// --- genesis and validator sets ---------------------------------------------------------------

/** The genesis the link names: the node's genesis bytes must hash to it. */
export async function checkGenesis(bytes, expectedHex) {
  const got = hex(await sha256(bytes));
  if (got !== String(expectedHex).toLowerCase()) {
    throw new Refusal(
      `this node's chain did not start from the genesis in the link: its genesis hashes to ` +
        `${got.slice(0, 16)}…, the link names ${String(expectedHex).slice(0, 16)}…`,
    );
  }
  const genesis = decode(bytes);
  return { chainId: field(genesis, "chain_id", "the genesis"), validators: await validatorSet(genesis.validators) };
}

async function validatorSet(list) {
  if (!Array.isArray(list) || list.length === 0) throw new Refusal("a validator set is malformed");
  const byKey = new Map();
  for (const v of list) {
    const key = bytesField(v, "public_key", "a validator", 32);
    byKey.set(hex(key), { name: field(v, "name", "a validator"), power: intField(v, "power", "a validator"), key });
  }
  const total = [...byKey.values()].reduce((n, v) => n + v.power, 0);
  return { list, byKey, hash: await sha256(encode(list)), total, quorum: Math.floor((total * 2) / 3) + 1 };
}

/** The certified validator-set changes of GET /v1/validators, each checked by the set
 * before it (lightclient/validator_history.py); returns the sets by the height they start. */
export async function verifyHistory(items, genesis) {
  if (!Array.isArray(items)) throw new Refusal("the validator history must be a list");
  const sets = [{ from: 0, vs: genesis.validators }];
  for (const [n, item] of items.entries()) {
    const header = field(item, "header", `validator change ${n}`);
    const before = sets[sets.length - 1];
    const height = intField(header, "height", `validator change ${n}`);
    if (height + 1 < before.from) throw new Refusal(`validator change ${n} is out of height order`);
    const vs = await validatorSet(field(item, "validators", `validator change ${n}`));
    if (!equalBytes(bytesField(header, "validators_hash", "a header", 32), before.vs.hash)) {
      throw new Refusal(`validator change ${n} (height ${height}) names a set other than the one in force there (a change before it is missing)`);
    }
    if (!equalBytes(bytesField(header, "next_validators_hash", "a header", 32), vs.hash)) {
      throw new Refusal(`validator change ${n}: its set is not the one header ${height} names next`);
    }
    if (equalBytes(vs.hash, before.vs.hash)) throw new Refusal(`validator change ${n} changes nothing`);
    try {
      await checkCertificate(header, field(item, "certificate", `validator change ${n}`), before.vs, genesis.chainId);
    } catch (exc) {
      throw new Refusal(`validator change ${n} against the set before it: ${exc.message}`);
    }
    sets.push({ from: height + 1, vs });
  }
  return sets;
}

export function setAt(sets, height) {
  let found = sets[0];
  for (const s of sets) if (s.from <= height) found = s;
  return found;
}

// --- certificates and headers -----------------------------------------------------------------

const keyCache = new Map();

async function ed25519Verify(publicKey, signature, message) {
  const id = hex(publicKey);
  if (!keyCache.has(id)) {
    keyCache.set(id, await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]));
  }
  return crypto.subtle.verify({ name: "Ed25519" }, keyCache.get(id), signature, message);
}

function voteBytes(chainId, height, round, blockHash) {
  const chain = utf8.encode(chainId);
  const message = encode({ block_hash: blockHash, height, round, type: PRECOMMIT });
  return concat(VOTE_TAG, Uint8Array.of(chain.length), chain, message);
}

/** The certificate commits header with >2/3 of vs's power (ledger/votes.py verify). */
async function checkCertificate(header, cert, vs, chainId) {
  const height = intField(header, "height", "the header");
  const blockHash = await sha256(encode(header));
  const certHeight = intField(cert, "height", "the certificate");
  const round = intField(cert, "round", "the certificate");
  const certBlock = bytesField(cert, "block_hash", "the certificate", 32);
  const signatures = field(cert, "signatures", "the certificate");
  if (certHeight !== height) throw new Refusal(`the commit certificate does not check out: certificate is for height ${certHeight}, expected ${height}`);
  if (!equalBytes(certBlock, blockHash)) {
    throw new Refusal(`the commit certificate does not check out: certificate at height ${height} is for block ${hex(certBlock).slice(0, 16)}…, not ${hex(blockHash).slice(0, 16)}… (the header was changed)`);
  }
  if (!Array.isArray(signatures)) throw new Refusal("the certificate's signatures are malformed");
  const message = voteBytes(chainId, height, round, certBlock);
  const signers = [];
  let power = 0;
  let previous = null;
  for (const pair of signatures) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new Refusal("the certificate's signatures are malformed");
    const [key, sig] = pair;
    if (!(key instanceof Uint8Array) || key.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) {
      throw new Refusal("certificate entries are (32-byte key, 64-byte signature)");
    }
    if (previous !== null && hex(previous) >= hex(key)) throw new Refusal("certificate signers must be distinct and sorted by key");
    previous = key;
    const validator = vs.byKey.get(hex(key));
    if (!validator) {
      throw new Refusal(`the commit certificate does not check out: certificate at height ${height} is signed by ${hex(key).slice(0, 16)}…, which is not a validator`);
    }
    if (!(await ed25519Verify(key, sig, message))) {
      throw new Refusal(`the commit certificate does not check out: certificate at height ${height}: bad signature from ${validator.name}`);
    }
    power += validator.power;
    signers.push(validator.name);
  }
  if (power < vs.quorum) {
    throw new Refusal(`the commit certificate does not check out: certificate at height ${height} carries power ${power} of ${vs.total}; more than 2/3 (${vs.quorum}) is needed`);
  }
  return { signers, power };
}

/** The answer's header, certified by >2/3 of the set in force at its height. */
export async function verifyCertified(answer, genesis, sets) {
  const header = field(answer, "header", "the answer");
  const cert = field(answer, "certificate", "the answer");
  const height = intField(header, "height", "the header");
  if (field(header, "chain_id", "the header") !== genesis.chainId) {
    throw new Refusal(`the answer is for chain ${JSON.stringify(header.chain_id)}, the genesis for ${JSON.stringify(genesis.chainId)}`);
  }
  if (Object.hasOwn(answer, "height") && answer.height !== height) {
    throw new Refusal(`the answer says height ${answer.height}, its header ${height}`);
  }
  const { vs } = setAt(sets, height);
  if (!equalBytes(bytesField(header, "validators_hash", "the header", 32), vs.hash)) {
    throw new Refusal(`header ${height} names a validator set other than the one known in force there`);
  }
  if (!vs.byKey.has(hex(bytesField(header, "proposer", "the header", 32)))) {
    throw new Refusal(`header ${height} names a proposer that is not a validator of its height`);
  }
  const { signers, power } = await checkCertificate(header, cert, vs, genesis.chainId);
  return { header, height, timeMs: intField(header, "time_ms", "the header"), signers, power, total: vs.total, count: vs.byKey.size };
}

// --- state proofs (ledger/state_proof.py) -----------------------------------------------------

function bit(bytes, i) {
  return (bytes[i >> 3] >> (7 - (i & 7))) & 1;
}

/** The checks of ledger/state_proof.py _check_shape: a proof has one form only. */
function checkProofShape(depth, bitmap, siblings, value, otherKey, otherValue) {
  if (depth > 256 || bitmap.length !== (depth + 7) >> 3 || !Array.isArray(siblings)) throw new Refusal("malformed state proof");
  let marked = 0;
  for (let i = 0; i < bitmap.length * 8; i++) {
    if (!bit(bitmap, i)) continue;
    if (i >= depth) throw new Refusal("malformed state proof: bitmap has bits set below the proof's depth");
    marked += 1;
  }
  if (marked !== siblings.length) throw new Refusal(`malformed state proof: bitmap marks ${marked} non-empty siblings but the proof has ${siblings.length}`);
  if (siblings.some((h) => !(h instanceof Uint8Array) || h.length !== 32 || equalBytes(h, EMPTY))) throw new Refusal("malformed state proof: a sibling is not a non-empty 32-byte hash");
  if ((otherKey === null) !== (otherValue === null)) throw new Refusal("malformed state proof: other_key_hash and other_value_hash come together or not at all");
  if (otherKey !== null && (value !== null || !(otherKey instanceof Uint8Array) || otherKey.length !== 32 || !(otherValue instanceof Uint8Array) || otherValue.length !== 32)) {
    throw new Refusal("malformed state proof: its other leaf is malformed");
  }
}

async function proofRoot(proof) {
  const key = bytesField(proof, "key", "the state proof");
  const value = field(proof, "value", "the state proof");
  const depth = intField(proof, "depth", "the state proof");
  const bitmap = bytesField(proof, "bitmap", "the state proof");
  const siblings = field(proof, "siblings", "the state proof");
  const otherKey = field(proof, "other_key_hash", "the state proof");
  const otherValue = field(proof, "other_value_hash", "the state proof");
  checkProofShape(depth, bitmap, siblings, value, otherKey, otherValue);
  const kh = await sha256(key);
  let cur;
  if (value instanceof Uint8Array) cur = await sha256(Uint8Array.of(0), kh, await sha256(value));
  else if (value !== null) throw new Refusal("malformed state proof");
  else if (otherKey instanceof Uint8Array && otherValue instanceof Uint8Array) {
    for (let i = 0; i < depth; i++) if (bit(otherKey, i) !== bit(kh, i)) throw new Refusal("the leaf offered as proof of absence is not on the key's path");
    if (equalBytes(otherKey, kh)) throw new Refusal("the leaf offered as proof of absence is the key's own leaf");
    cur = await sha256(Uint8Array.of(0), otherKey, otherValue);
  } else cur = EMPTY;
  let j = siblings.length;
  for (let level = depth - 1; level >= 0; level--) {
    let sibling = EMPTY;
    if (bit(bitmap, level)) {
      j -= 1;
      if (j < 0 || !(siblings[j] instanceof Uint8Array) || siblings[j].length !== 32) throw new Refusal("malformed state proof");
      sibling = siblings[j];
    }
    cur = bit(kh, level) ? await sha256(Uint8Array.of(1), sibling, cur) : await sha256(Uint8Array.of(1), cur, sibling);
  }
  if (j !== 0) throw new Refusal("state proof has more siblings than its bitmap marks");
  return cur;
}

/** The record proven at key under the certified header's state root (null: proven absent). */
export async function verifyItem(item, certified, key) {
  const what = `the record at ${JSON.stringify(new TextDecoder().decode(key))}`;
  if (!equalBytes(bytesField(item, "key", what), key)) throw new Refusal(`${what}: the node sent the record of another key`);
  const proof = field(item, "proof", what);
  if (!equalBytes(bytesField(proof, "key", what), key)) throw new Refusal(`${what}: the state proof is for another key`);
  const root = bytesField(certified.header, "state_root", "the header", 32);
  if (!equalBytes(await proofRoot(proof), root)) {
    throw new Refusal(`${what}: the state proof does not lead to the certified state root of height ${certified.height}`);
  }
  const record = field(item, "record", what);
  const proven = proof.value;
  if (proven === null ? record !== null : record === null || !equalBytes(encode(record), proven)) {
    throw new Refusal(`${what}: the record shown differs from the proven value (forged record)`);
  }
  return record;
}

/** GET /v1/state/<key hex>: the value proven at key (null: proven absent). */
export async function verifyStateAnswer(answer, genesis, sets, key) {
  const certified = await verifyCertified(answer, genesis, sets);
  const raw = field(answer, "value", "the state answer");
  if (raw !== null && !(raw instanceof Uint8Array)) throw new Refusal("the state answer's value is not bytes");
  const item = { key: field(answer, "key", "the state answer"), proof: field(answer, "proof", "the state answer"), record: raw === null ? null : decode(raw) };
  return { certified, record: await verifyItem(item, certified, key) };
}

// --- permits (lightclient/permits.py, contracts/permits.py) -----------------------------------

/** The permit record and its whole history, proven at the certified height. */
export async function verifyPermit(answer, genesis, sets, permitId) {
  const certified = await verifyCertified(answer, genesis, sets);
  const permit = await verifyItem(field(answer, "permit", "the answer"), certified, utf8.encode(`permit/${permitId}`));
  if (!isMap(permit)) throw new Refusal(`permit ${JSON.stringify(permitId)} is proven absent at height ${certified.height}`);
  if (permit.id !== permitId) throw new Refusal(`the proven record is not permit ${JSON.stringify(permitId)}`);
  const items = field(answer, "history", "the answer");
  const declared = intField(permit, "history_len", "the permit");
  if (!Array.isArray(items)) throw new Refusal("the permit history is malformed");
  if (items.length !== declared) {
    throw new Refusal(`the permit says ${declared} history entries, the node sent ${items.length} (truncated or emptied history)`);
  }
  const history = [];
  for (const [seq, item] of items.entries()) {
    const entry = await verifyItem(item, certified, utf8.encode(`permit/${permitId}/h/${seq}`));
    if (!isMap(entry) || entry.seq !== seq || !(entry.height <= certified.height)) {
      throw new Refusal(`permit ${JSON.stringify(permitId)}: history entry ${seq} is malformed`);
    }
    history.push(entry);
  }
  return { certified, permit, history };
}

/** The status as it reads at atMs (issued/suspended read expired from valid_until). */
export function effectiveStatus(permit, atMs) {
  if ((permit.status === "issued" || permit.status === "suspended") && atMs >= permit.valid_until) return "expired";
  return permit.status;
}

/** Whether the permit authorises its holder at atMs, and why (not). */
export function permitValidAt(permit, history, atMs, time = String) {
  if (history.length === 0 || history[0].time_ms > atMs) return [false, "the permit did not exist yet at that time"];
  const status = effectiveStatus(permit, atMs);
  if (status === "expired") return [false, `expired at ${time(permit.valid_until)}`];
  if (status !== "issued") return [false, `permit is ${status}`];
  if (atMs < permit.valid_from) return [false, `not valid before ${time(permit.valid_from)}`];
  return [true, `issued, valid from ${time(permit.valid_from)} until ${time(permit.valid_until)}`];
}

/** How many history entries were written at or before atMs. */
export function entriesBy(view, atMs) {
  return view.history.filter((e) => e.time_ms <= atMs).length;
}

// --- freshness and the verdict (lightclient/answers.py) ---------------------------------------

export function describeAge(ms) {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.floor(ms / 1000);
  for (const [unit, size, sub, subSize] of [["d", 86400, "h", 3600], ["h", 3600, "min", 60]]) {
    if (s >= size) return `${Math.floor(s / size)} ${unit} ${Math.floor((s % size) / subSize)} ${sub}`;
  }
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

/** The certified block's age, if the freshness asked for accepts it. */
export function checkFreshness(certified, { nowMs, maxAgeMs = DEFAULT_MAX_AGE_MS, coversMs = null, height = null }) {
  if (height !== null && certified.height !== height) {
    throw new Refusal(`asked for height ${height}, the node answered for height ${certified.height}`);
  }
  const age = Math.max(0, nowMs - certified.timeMs);
  const covered = coversMs !== null && certified.timeMs >= coversMs;
  if (maxAgeMs !== null && age > maxAgeMs && !covered) {
    throw new Refusal(
      `the answer is stale: its certified block, height ${certified.height}, is ${describeAge(age)} old, ` +
        `over the limit of ${describeAge(maxAgeMs)} (the node is behind or the network has stopped)`,
    );
  }
  return age;
}

/** Everything the permit page checks, from what the node served: the verdict.
 * inputs: genesisBytes, genesisHash (the link's), validators (GET /v1/validators answer),
 * answer (GET /v1/permits/<id>), permitId, nowMs, maxAgeMs, and atMs (null: now) with
 * fetchAt(height), which gets the permit's answer at an older height when the permit
 * changed after atMs (it is judged as it stood then, as `cityledger permit check --at`). */
export async function verifyPermitPage(inputs) {
  try {
    const { genesis, sets } = await trustFrom(inputs.genesisBytes, inputs.genesisHash, inputs.validators);
    if (inputs.answer === null) return await permitAbsent(inputs, genesis, sets);
    const latest = await verifyPermit(inputs.answer, genesis, sets, inputs.permitId);
    const atMs = inputs.atMs ?? null;
    const maxAgeMs = inputs.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    const ageMs = checkFreshness(latest.certified, { nowMs: inputs.nowMs, maxAgeMs, coversMs: atMs });
    const view = atMs === null ? latest : await permitThen(latest, atMs, inputs, genesis, sets);
    const judgedAt = atMs ?? inputs.nowMs;
    const [valid, why] = permitValidAt(view.permit, view.history, judgedAt);
    return { verified: true, reason: verifiedReason(latest.certified), view, latest, ageMs, valid, why, judgedAt };
  } catch (exc) {
    if (exc instanceof Refusal || exc instanceof DecodeError) return { verified: false, reason: `NOT verified: ${exc.message}` };
    throw exc;
  }
}

/** The node said the permit does not exist (404): its absence must be proven, as the CLI
 * asks (inputs.absence: the GET /v1/state answer of its key). */
async function permitAbsent(inputs, genesis, sets) {
  const key = utf8.encode(`permit/${inputs.permitId}`);
  const { certified, record } = await verifyStateAnswer(inputs.absence, genesis, sets, key);
  if (record !== null) throw new Refusal(`the node said permit ${JSON.stringify(inputs.permitId)} does not exist`);
  const ageMs = checkFreshness(certified, { nowMs: inputs.nowMs, maxAgeMs: inputs.maxAgeMs ?? DEFAULT_MAX_AGE_MS });
  const why = "no such permit (proven absent)";
  return { verified: true, absent: true, reason: verifiedReason(certified), latest: { certified }, ageMs, valid: false, why, judgedAt: inputs.atMs ?? inputs.nowMs };
}

/** The permit as it stood at atMs: latest, or its proven state at the height of the last
 * history entry written by then, which must be exactly latest's history up to there. */
async function permitThen(latest, atMs, inputs, genesis, sets) {
  const count = entriesBy(latest, atMs);
  if (count === 0 || count === latest.history.length) return latest;
  const height = latest.history[count - 1].height;
  const then = await verifyPermit(await inputs.fetchAt(height), genesis, sets, inputs.permitId);
  checkFreshness(then.certified, { nowMs: inputs.nowMs, maxAgeMs: null, height });
  const same = then.history.length === count && then.history.every((e, i) => equalBytes(encode(e), encode(latest.history[i])));
  if (then.permit.history_len !== count || !same) {
    throw new Refusal(`the permit at height ${height} is not the permit as it stood at the time asked (${then.permit.history_len} history entries, ${count} expected)`);
  }
  return then;
}

/** "Verified at 14:02:11 UTC by 3 of 4 validators": the certified block's time. */
export function verifiedReason(certified, formatTime = utcTime) {
  const weighted = certified.power !== certified.signers.length || certified.total !== certified.count;
  const power = weighted ? `, ${certified.power} of ${certified.total} voting power` : "";
  return `Verified at ${formatTime(certified.timeMs)} by ${certified.signers.length} of ${certified.count} validators (height ${certified.height}${power})`;
}

export function utcTime(ms) {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}

// --- the chain pages: trust from the link, blocks, checkpoints --------------------------------

/** The genesis the link names and the validator history verified from it. */
export async function trustFrom(genesisBytes, genesisHash, validatorsAnswer) {
  const genesis = await checkGenesis(genesisBytes, genesisHash);
  return { genesis, sets: await verifyHistory(field(validatorsAnswer, "history", "the validators answer"), genesis) };
}

/** RFC 6962 / 9162 root over leaf data (a block's tx root over its transaction hashes). */
export async function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  let level = [];
  for (const leaf of leaves) level.push(await sha256(Uint8Array.of(0), leaf));
  while (level.length > 1) {
    const up = [];
    for (let i = 0; i + 1 < level.length; i += 2) up.push(await sha256(Uint8Array.of(1), level[i], level[i + 1]));
    if (level.length % 2) up.push(level[level.length - 1]);
    level = up;
  }
  return level[0];
}

/** A transaction's hash: SHA-256 of its signed part; a redacted one's as the node gives it. */
async function txHash(tx) {
  if (tx.redacted === true) return bytesField(tx, "hash", "a redacted transaction", 32);
  const { signature, ...body } = tx;
  if (!(signature instanceof Uint8Array)) throw new Refusal("a transaction has no signature");
  return sha256(encode(Object.assign(Object.create(null), body)));
}

/** GET /v1/blocks/<h>: the header certified, the answer's hash its hash, the transactions
 * (redacted ones by their hash) the header's tx root, the evidence its evidence root
 * (lightclient/blocks.py). */
export async function verifyBlock(answer, genesis, sets) {
  const block = field(answer, "block", "the block answer");
  const header = field(block, "header", "the block");
  const certified = await verifyCertified({ header, certificate: field(answer, "certificate", "the block answer"), height: answer.height }, genesis, sets);
  const hash = await sha256(encode(header));
  if (!equalBytes(bytesField(answer, "hash", "the block answer", 32), hash)) throw new Refusal(`block ${certified.height}: the answer names another hash than its header's`);
  const txs = field(block, "txs", "the block");
  if (!Array.isArray(txs) || txs.length !== header.tx_count) throw new Refusal(`block ${certified.height} holds ${txs.length} transactions, its header says ${header.tx_count}`);
  const hashes = [];
  for (const tx of txs) hashes.push(await txHash(tx));
  if (!equalBytes(await merkleRoot(hashes), header.tx_root)) throw new Refusal(`block ${certified.height}: tx_root does not match its transactions`);
  const evidence = field(block, "evidence", "the block");
  if (!Array.isArray(evidence)) throw new Refusal(`block ${certified.height}: its evidence is malformed`);
  const pieces = [];
  for (const piece of evidence) pieces.push(await sha256(encode(piece)));
  if (!equalBytes(await merkleRoot(pieces), header.evidence_root)) {
    throw new Refusal(`block ${certified.height}: evidence_root does not match its ${evidence.length} pieces of evidence`);
  }
  return { certified, hash, txs, hashes };
}

/** GET /v1/checkpoint: the latest certified header, with its hash, log size and root. */
export async function verifyCheckpoint(answer, genesis, sets, genesisHash) {
  const certified = await verifyCertified(answer, genesis, sets);
  const header = certified.header;
  const hash = await sha256(encode(header));
  if (hex(bytesField(answer, "genesis_hash", "the checkpoint", 32)) !== genesisHash) throw new Refusal("the checkpoint names another genesis");
  if (!equalBytes(bytesField(answer, "block_hash", "the checkpoint", 32), hash)) throw new Refusal("the checkpoint's block hash is not its header's");
  if (answer.log_size !== header.log_size || !equalBytes(bytesField(answer, "log_root", "the checkpoint", 32), header.log_root)) {
    throw new Refusal("the checkpoint's log size or root is not its header's");
  }
  return { certified, hash, logSize: header.log_size, logRoot: header.log_root };
}

/** GET /v1/log/consistency?old=<size>: the certified log extends the log of oldSize
 * transactions whose root is oldRoot (the checkpoint the user holds, never the node's
 * old_root): RFC 9162 §2.1.4.2, as ledger/merkle.py verify_consistency. */
export async function verifyConsistency(answer, genesis, sets, oldSize, oldRoot) {
  const certified = await verifyCertified(answer, genesis, sets);
  const proof = field(answer, "proof", "the consistency answer");
  const newSize = certified.header.log_size;
  if (proof.old_size !== oldSize || proof.new_size !== newSize) throw new Refusal("the proof is not between the two certified log sizes");
  const path = field(proof, "path", "the consistency proof");
  if (!Array.isArray(path) || !path.every((h) => h instanceof Uint8Array && h.length === 32)) throw new Refusal("the consistency proof is malformed");
  const newRoot = certified.header.log_root;
  if (oldSize === 0 || oldSize === newSize) {
    const same = oldSize === 0 ? equalBytes(oldRoot, await sha256(new Uint8Array(0))) : equalBytes(oldRoot, newRoot);
    if (path.length || !same) throw new Refusal(`consistency proof ${oldSize} -> ${newSize} does not hold (old root mismatch)`);
    return { certified, newSize };
  }
  const [fr, sr] = await rootsFromConsistency(oldSize, newSize, oldRoot, path);
  if (!equalBytes(fr, oldRoot)) throw new Refusal(`consistency proof ${oldSize} -> ${newSize} gives another old root (old root mismatch)`);
  if (!equalBytes(sr, newRoot)) throw new Refusal(`consistency proof ${oldSize} -> ${newSize} gives another new root (new root mismatch)`);
  return { certified, newSize };
}

async function rootsFromConsistency(oldSize, newSize, oldRoot, proof) {
  const path = (oldSize & (oldSize - 1)) === 0 ? [oldRoot, ...proof] : [...proof];
  if (path.length === 0) throw new Refusal("the consistency proof is empty");
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn & 1) [fn, sn] = [fn >>> 1, sn >>> 1];
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw new Refusal("consistency proof is too long: the path reached the root early");
    if (fn & 1 || fn === sn) {
      fr = await sha256(Uint8Array.of(1), c, fr);
      sr = await sha256(Uint8Array.of(1), c, sr);
      while (!(fn & 1) && fn !== 0) [fn, sn] = [fn >>> 1, sn >>> 1];
    } else sr = await sha256(Uint8Array.of(1), sr, c);
    [fn, sn] = [fn >>> 1, sn >>> 1];
  }
  if (sn !== 0) throw new Refusal("consistency proof is too short: the path ended below the root");
  return [fr, sr];
}
