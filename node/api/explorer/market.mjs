// The energy market page, /explorer/market?genesis=<hex>[&to=<time>][&count=N]: the clearing
// price and volume of the last N intervals as a chart. Markets are not public (read rules):
// each request is signed here with a member key the user gives (it never leaves the page,
// as node/api/auth.py describes the signature), and each interval's market record is proven
// against a certified state root (verify.mjs) before it is drawn.

import { DecodeError, encode } from "./msgpack.mjs";
import { cryptoMissing, el, fetchBytes, fetchValue, fmtTime, linkGenesis, setVerdict, table } from "./page.mjs";
import { DEFAULT_MAX_AGE_MS, Refusal, checkFreshness, fromHex, hex, sha256, trustFrom, verifyCertified, verifyItem, verifyStateAnswer } from "./verify.mjs";

const API_TAG = new TextEncoder().encode("cityledger/v1/api-request\0");
const PKCS8_ED25519 = fromHex("302e020100300506032b657004220420"); // RFC 8410 prefix of a seed
const DEFAULT_INTERVAL_MS = 15 * 60 * 1000;
const params = new URLSearchParams(location.search);
const COUNT = Math.min(Math.max(Number(params.get("count")) || 12, 1), 48);

/** A member key from an unencrypted key file (ledger/keyfile.py), usable only to sign. */
async function readKey(text) {
  const doc = JSON.parse(text);
  if (doc.cityledger_key !== 1) throw new Refusal("not a CityLedger key file");
  if (doc.encryption !== "none") throw new Refusal("this key file is sealed with a passphrase: the browser cannot open it (no Argon2id in WebCrypto)");
  const seed = fromHex(doc.seed);
  if (seed.length !== 32) throw new Refusal("the key file's seed is not 32 bytes");
  const pkcs8 = new Uint8Array([...PKCS8_ED25519, ...seed]);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const publicKey = fromBase64url((await crypto.subtle.exportKey("jwk", key)).x);
  if (hex(publicKey) !== String(doc.public_key).toLowerCase()) throw new Refusal("the key file's public key does not match its seed");
  return { key, publicKey };
}

function fromBase64url(text) {
  const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function signedGet(path, member, chainId, nodeKey) {
  const timeMs = Date.now();
  const message = encode({ body_sha256: await sha256(new Uint8Array(0)), chain_id: chainId, method: "GET", node: nodeKey, path, time_ms: timeMs });
  const chain = new TextEncoder().encode(chainId);
  const signed = new Uint8Array([...API_TAG, chain.length, ...chain, ...message]);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, member.key, signed));
  const headers = { "X-CityLedger-Key": hex(member.publicKey), "X-CityLedger-Time": String(timeMs), "X-CityLedger-Signature": hex(signature) };
  return fetchValue(path, {}, headers);
}

async function intervalMs(trust) {
  const key = new TextEncoder().encode("params");
  const { record } = await verifyStateAnswer(await fetchValue(`/v1/state/${hex(key)}`), trust.genesis, trust.sets, key);
  return record?.energy_interval_ms ?? DEFAULT_INTERVAL_MS;
}

async function market(member, trust, chainId, nodeKey, start) {
  const answer = await signedGet(`/v1/energy/market/${start}`, member, chainId, nodeKey);
  const certified = await verifyCertified(answer, trust.genesis, trust.sets);
  checkFreshness(certified, { nowMs: Date.now(), maxAgeMs: DEFAULT_MAX_AGE_MS });
  const book = await verifyItem(answer.market, certified, new TextEncoder().encode(`energy/market/${start}`));
  return { start, book, certified };
}

function parseTo(text) {
  if (!text) return Date.now();
  if (/^\d+$/.test(text)) return Number(text);
  const ms = Date.parse(/Z$/.test(text) ? text : `${text}Z`);
  if (Number.isNaN(ms)) throw new Refusal(`cannot read the time ${text}`);
  return ms;
}

async function load(member, genesis) {
  const trust = await trustFrom(await fetchBytes("/v1/genesis"), genesis, await fetchValue("/v1/validators"));
  const status = await fetchValue("/v1/status");
  const step = await intervalMs(trust);
  const last = Math.floor(parseTo(document.getElementById("to").value.trim() || params.get("to")) / step) * step;
  const rows = [];
  for (let i = COUNT - 1; i >= 0; i--) rows.push(await market(member, trust, trust.genesis.chainId, status.public_key, last - i * step));
  draw(rows);
  const settled = rows.filter((r) => r.book?.clearing);
  const lines = rows.map((r) => [fmtTime(r.start), r.book ? r.book.status : "no market", r.book?.clearing ? String(r.book.clearing.price_per_kwh) : "—", r.book?.clearing ? (r.book.clearing.volume_wh / 1000).toFixed(1) : "—", r.book?.clearing ? String(r.book.clearing.trade_count) : "—"]);
  document.getElementById("content").replaceChildren(table(["interval from", "status", "clearing price / kWh", "volume kWh", "trades"], lines));
  const c = rows[rows.length - 1].certified;
  return `Verified: ${rows.length} intervals' market records (${settled.length} settled) proven against certified state roots, latest height ${c.height}, ${c.signers.length} of ${c.count} validators`;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Volume as bars, clearing price as a line, one slot per interval (plain SVG). */
function draw(rows) {
  const width = 900, height = 260, pad = 40, slot = (width - 2 * pad) / rows.length;
  const volume = rows.map((r) => (r.book?.clearing ? r.book.clearing.volume_wh / 1000 : 0));
  const price = rows.map((r) => (r.book?.clearing ? r.book.clearing.price_per_kwh : null));
  const maxV = Math.max(1, ...volume), maxP = Math.max(1, ...price.filter((p) => p !== null));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "clearing price and volume per interval" });
  rows.forEach((r, i) => {
    const h = ((height - 2 * pad) * volume[i]) / maxV;
    chart.append(svg("rect", { x: pad + i * slot + 2, y: height - pad - h, width: slot - 4, height: h, fill: "#9cc3e6" }));
    if (i % Math.ceil(rows.length / 6) === 0) chart.append(svg("text", { x: pad + i * slot, y: height - pad + 14, "font-size": 10 }, fmtTime(r.start).slice(5, 16)));
  });
  const points = price.map((p, i) => (p === null ? null : `${pad + (i + 0.5) * slot},${height - pad - ((height - 2 * pad) * p) / maxP}`)).filter(Boolean);
  if (points.length) chart.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#c0392b", "stroke-width": 2 }));
  for (const point of points) {
    const [cx, cy] = point.split(",");
    chart.append(svg("circle", { cx, cy, r: 4, fill: "#c0392b" }));
  }
  chart.append(svg("text", { x: pad, y: 14, "font-size": 12, fill: "#2a6fb0" }, `bars: volume (kWh, max ${maxV.toFixed(1)})`));
  chart.append(svg("text", { x: pad + 260, y: 14, "font-size": 12, fill: "#c0392b" }, `line: clearing price per kWh (max ${maxP})`));
  document.getElementById("chart").replaceChildren(chart);
}

async function keyText() {
  const file = document.getElementById("key-file").files[0];
  if (file) return file.text();
  const pasted = document.getElementById("key-text").value.trim();
  if (!pasted) throw new Refusal("give a key file (a prosumer's, the energy regulator's or an auditor's)");
  return pasted;
}

document.getElementById("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const genesis = linkGenesis();
  if (!genesis) return setVerdict(false, "NOT verified: the link names no genesis hash (?genesis=<64 hex digits>)");
  const missing = cryptoMissing();
  if (missing) return setVerdict(false, `NOT verified: ${missing}`);
  try {
    setVerdict(true, await load(await readKey(await keyText()), genesis));
  } catch (exc) {
    if (!(exc instanceof Refusal) && !(exc instanceof DecodeError) && !(exc instanceof SyntaxError)) throw exc;
    document.getElementById("chart").replaceChildren();
    setVerdict(false, `NOT verified: ${exc.message}`);
  }
});
document.body.dataset.ready = "true"; // the form is live (a test waits for this)
