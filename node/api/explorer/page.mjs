// What every explorer page shares: fetching msgpack answers from this node, building DOM
// (text only: nothing a node sends is ever parsed as HTML), times, and the verdict element.

import { decode } from "./msgpack.mjs";
import { Refusal } from "./verify.mjs";

const MAX_ANSWER = 32 * 1024 * 1024;

/** The raw bytes of GET path (msgpack), or a Refusal naming the node's error. */
export async function fetchBytes(path, params = {}, headers = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined));
  const url = query.size ? `${path}?${query}` : path;
  let response;
  try {
    response = await fetch(url, { headers: { ...headers, Accept: "application/msgpack" }, cache: "no-store" });
  } catch (exc) {
    throw new Refusal(`the node did not answer ${path}: ${exc.message}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > MAX_ANSWER) throw new Refusal(`the answer to ${path} is too large`);
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      message = decode(bytes).error.message;
    } catch {
      // not our error shape: the status says enough
    }
    const error = new Refusal(`the node refused ${path}: ${message}`);
    error.status = response.status;
    throw error;
  }
  return bytes;
}

export async function fetchValue(path, params = {}, headers = {}) {
  return decode(await fetchBytes(path, params, headers));
}

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined || ms === 0) return "—";
  const d = new Date(Number(ms));
  return `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

export function clockTime(ms) {
  return new Date(Number(ms)).toISOString().slice(11, 19) + " UTC";
}

export function table(head, rows) {
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))),
  );
}

/** #verdict: data-verified "true"/"false" and one line people can read. */
export function setVerdict(ok, reason) {
  const verdict = document.getElementById("verdict");
  verdict.dataset.verified = ok ? "true" : "false";
  verdict.className = ok ? "verdict ok" : "verdict bad";
  verdict.textContent = (ok ? "✔ " : "✘ ") + reason;
}

/** WebCrypto exists only in a secure context (https, or http on localhost). */
export function cryptoMissing() {
  if (globalThis.isSecureContext && globalThis.crypto?.subtle) return null;
  return "this page is not in a secure context (https, or http on localhost), so the browser offers no WebCrypto to check signatures with; open the node's https address";
}

/** The genesis hash the link names (?genesis=), or null. */
export function linkGenesis() {
  const value = new URLSearchParams(location.search).get("genesis");
  return value && /^[0-9a-fA-F]{64}$/.test(value) ? value.toLowerCase() : null;
}
