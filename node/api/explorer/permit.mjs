// The permit page, /explorer/permits/<id>?genesis=<hex>[&at=<time>]: fetches the genesis,
// the validator history and the permit's answer from this node, judges them with
// verify.mjs (the checks of `cityledger permit check`), and shows the verdict in #verdict.

import { cryptoMissing, el, fetchBytes, fetchValue, fmtTime, clockTime, linkGenesis, setVerdict, table } from "./page.mjs";
import { effectiveStatus, hex, permitValidAt, verifiedReason, verifyPermitPage } from "./verify.mjs";

const permitId = decodeURIComponent(location.pathname.split("/")[3] || "");
const params = new URLSearchParams(location.search);

function parseAt(text) {
  if (!text) return null;
  if (/^\d+$/.test(text)) return Number(text);
  const ms = Date.parse(/Z|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

async function main() {
  document.getElementById("title").textContent = `Permit ${permitId}`;
  showQr();
  const genesisHash = linkGenesis();
  if (!genesisHash) return setVerdict(false, "NOT verified: the link names no genesis hash (?genesis=<64 hex digits>), so there is nothing to check the node against");
  const missing = cryptoMissing();
  if (missing) return setVerdict(false, `NOT verified: ${missing}`);
  const atMs = parseAt(params.get("at"));
  if (atMs === undefined) return setVerdict(false, `NOT verified: cannot read the time ${params.get("at")}`);
  const path = `/v1/permits/${encodeURIComponent(permitId)}`;
  let inputs;
  try {
    inputs = {
      genesisHash,
      genesisBytes: await fetchBytes("/v1/genesis"),
      validators: await fetchValue("/v1/validators"),
      answer: await fetchValue(path).catch((exc) => (exc.status === 404 ? null : Promise.reject(exc))),
      permitId,
      nowMs: Date.now(),
      atMs,
      fetchAt: (height) => fetchValue(path, { height }),
    };
    if (inputs.answer === null) inputs.absence = await fetchValue(`/v1/state/${hex(new TextEncoder().encode(`permit/${permitId}`))}`);
  } catch (exc) {
    return setVerdict(false, `NOT verified: ${exc.message}`);
  }
  const result = await verifyPermitPage(inputs);
  if (!result.verified) return setVerdict(false, result.reason);
  const absent = result.absent ? ` — no permit ${permitId} exists (proven absent)` : "";
  setVerdict(true, verifiedReason(result.latest.certified, clockTime) + absent);
  if (result.absent) return showAbsent(result);
  show(result);
}

function show(result) {
  const { permit, history } = result.view;
  const when = result.judgedAt;
  const [, why] = permitValidAt(permit, history, when, fmtTime);
  const facts = document.getElementById("facts");
  const valid = el("span", { class: `valid ${result.valid ? "yes" : "no"}`, id: "valid" }, result.valid ? "VALID" : "NOT VALID");
  const rows = [
    ["Holder", permit.holder],
    ["Type", permit.type],
    ["Address", permit.address],
    ["Description", permit.description],
    ["Status", `${effectiveStatus(permit, when)} (stored: ${permit.status})`],
    ["Valid from", fmtTime(permit.valid_from)],
    ["Valid until", fmtTime(permit.valid_until)],
    [params.get("at") ? `At ${fmtTime(when)}` : "Now", el("span", {}, valid, ` — ${why}`)],
  ];
  if (permit.conditions) rows.push(["Conditions", permit.conditions]);
  if (permit.reason) rows.push(["Reason", permit.reason]);
  rows.push(["Proven at", `height ${result.latest.certified.height}, block time ${fmtTime(result.latest.certified.timeMs)} (${Math.round(result.ageMs / 1000)} s old)`]);
  for (const [name, value] of rows) facts.append(el("dt", {}, name), el("dd", {}, value));
  const entries = history.map((e) => [String(e.seq), fmtTime(e.time_ms), e.action, e.status, e.actor_org, String(e.height)]);
  document.getElementById("history").append(table(["#", "time", "action", "status left", "by", "block"], entries));
}

function showAbsent(result) {
  const none = el("span", { class: "valid no", id: "valid" }, "NOT VALID");
  const c = result.latest.certified;
  document.getElementById("facts").append(el("dt", {}, "Permit"), el("dd", {}, none, ` — no permit ${permitId} exists: the node proved its absence at height ${c.height}`));
}

function showQr() {
  const genesis = linkGenesis();
  if (!genesis) return;
  const origin = encodeURIComponent(location.origin);
  const src = `/explorer/permits/${encodeURIComponent(permitId)}/qr.svg?origin=${origin}`;
  document.getElementById("qr").append(el("img", { src, alt: "QR code of this page", id: "qr-image" }), el("p", { class: "muted" }, "Scan to open this page"));
}

document.getElementById("at-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const next = new URLSearchParams(location.search);
  const text = document.getElementById("at").value.trim();
  if (text) next.set("at", text);
  else next.delete("at");
  location.search = next.toString();
});

main().catch((exc) => setVerdict(false, `NOT verified: the page failed: ${exc.message}`));
