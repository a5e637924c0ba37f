// The explorer's start page: the genesis hash to check against (the node's claim is shown,
// never trusted: the user compares it with their genesis file), and the pages.

import { el, fetchValue } from "./page.mjs";
import { hex } from "./verify.mjs";

const PAGES = [["chain", "Chain status"], ["blocks", "Blocks"], ["validators", "Validators"], ["checkpoints", "Audit checkpoint"], ["market", "Energy market"]];
const input = document.getElementById("genesis");

function links() {
  const genesis = input.value.trim().toLowerCase();
  const list = document.getElementById("pages");
  list.replaceChildren(...PAGES.map(([page, title]) => el("li", {}, el("a", { href: `/explorer/${page}?genesis=${genesis}` }, title))));
}

async function main() {
  try {
    const status = await fetchValue("/v1/status");
    const claimed = hex(status.genesis_hash);
    input.value = input.value || claimed;
    document.getElementById("claimed").textContent = `This node says its chain's genesis hash is ${claimed} — a claim: compare it with your genesis file's.`;
  } catch (exc) {
    document.getElementById("claimed").textContent = `The node did not say its genesis hash: ${exc.message}`;
  }
  links();
}

input.addEventListener("input", links);
document.getElementById("genesis-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = document.getElementById("permit").value.trim();
  if (id) location.href = `/explorer/permits/${encodeURIComponent(id)}?genesis=${input.value.trim().toLowerCase()}`;
});
main();
