// Runs the browser's verifier (node/api/explorer/verify.mjs, msgpack.mjs) over
// tests/vectors/explorer/*.json under Node's WebCrypto and prints one JSON line per
// vector: {name, verified, reason, valid} for permit and block vectors, {name, failures}
// for the encoding vectors. test_vectors.py compares them with what each vector expects.
// Usage: node run_vectors.mjs <vector dir>

import { webcrypto } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decode, encode } from "../../../node/api/explorer/msgpack.mjs";
import { Refusal, fromHex, hex, trustFrom, verifiedReason, verifyBlock, verifyConsistency, verifyPermitPage } from "../../../node/api/explorer/verify.mjs";

globalThis.crypto ??= webcrypto; // global from Node 19 on; Debian 12's Node 18 has it here

function build(typed) {
  if (typed === null || typeof typed !== "object") return typed;
  if (Array.isArray(typed)) return typed.map(build);
  if ("int" in typed) {
    const big = BigInt(typed.int);
    return Number.isSafeInteger(Number(big)) && BigInt(Number(big)) === big ? Number(big) : big;
  }
  if ("bytes" in typed) return fromHex(typed.bytes);
  const map = Object.create(null);
  for (const [k, v] of typed.map) map[k] = build(v);
  return map;
}

function same(a, b) {
  return hex(encode(a)) === hex(encode(b));
}

function runEncoding(v) {
  const failures = [];
  for (const item of v.values) {
    const value = build(item.typed);
    const got = hex(encode(value));
    if (got !== item.hex) failures.push(`encode ${JSON.stringify(item.typed).slice(0, 60)}: ${got} != ${item.hex}`);
    else if (!same(decode(fromHex(item.hex)), value)) failures.push(`decode ${item.hex.slice(0, 40)}`);
  }
  for (const item of v.refused) {
    try {
      decode(fromHex(item.hex));
      failures.push(`accepted ${item.hex} (${item.why})`);
    } catch (exc) {
      if (exc.constructor.name !== "DecodeError") failures.push(`${item.hex}: ${exc}`);
    }
  }
  return { name: v.name, failures };
}

const CHAIN_CHECKS = {
  block: (answer, trust) => verifyBlock(answer, trust.genesis, trust.sets),
  consistency: (answer, trust, v) => verifyConsistency(answer, trust.genesis, trust.sets, v.old_size, fromHex(v.old_root)),
};

async function runChain(v) {
  try {
    const trust = await trustFrom(fromHex(v.genesis), v.genesis_hash, decode(fromHex(v.validators)));
    const { certified } = await CHAIN_CHECKS[v.kind](decode(fromHex(v.answer)), trust, v);
    return { name: v.name, verified: true, reason: verifiedReason(certified), valid: null };
  } catch (exc) {
    if (!(exc instanceof Refusal)) throw exc;
    return { name: v.name, verified: false, reason: `NOT verified: ${exc.message}`, valid: null };
  }
}

async function runPermit(v) {
  const answersAt = v.answers_at;
  const decoded = (text) => decode(fromHex(text));
  let validators;
  let answer;
  try {
    validators = decoded(v.validators);
    answer = v.answer === null ? null : decoded(v.answer);
  } catch (exc) {
    return { name: v.name, verified: false, reason: `NOT verified: ${exc.message}`, valid: null };
  }
  const result = await verifyPermitPage({
    genesisBytes: fromHex(v.genesis),
    genesisHash: v.genesis_hash,
    validators,
    answer,
    permitId: v.permit_id,
    absence: v.absence === null ? null : decoded(v.absence),
    nowMs: v.now_ms,
    maxAgeMs: v.max_age_ms,
    atMs: v.at_ms,
    fetchAt: async (height) => decoded(answersAt[String(height)]),
  });
  return { name: v.name, verified: result.verified, reason: result.reason, valid: result.verified ? result.valid : null };
}

const dir = process.argv[2];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const v = JSON.parse(readFileSync(join(dir, file), "utf8"));
  const run = { encoding: runEncoding, block: runChain, consistency: runChain, permit: runPermit }[v.kind ?? v.name];
  const out = await run(v);
  process.stdout.write(JSON.stringify(out) + "\n");
}
