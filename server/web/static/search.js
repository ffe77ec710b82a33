// The project page's item search: filters go to GET /api/projects/<id>/items as they change, a page of
// results comes back, and each links to the labeling page, which re-opens the item to change its label.
// Item data is untrusted: it only ever reaches the page through textContent.
"use strict";

(() => {
  const card = document.getElementById("search");
  if (!card) return;
  const form = document.getElementById("search-form");
  const status = document.getElementById("search-status");
  const table = document.getElementById("search-results");
  const pager = document.getElementById("search-pages");
  const SNIPPET = 160;
  let page = 1;
  let asked = 0; // the latest request: an older answer arriving late must not overwrite a newer one

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function snippet(data) {
    const text = data && typeof data.text === "string" ? data.text : JSON.stringify(data);
    return text.length > SNIPPET ? `${text.slice(0, SNIPPET)}…` : text;
  }

  function labelText(label) {
    if (label === null || label === undefined) return "—";
    return Array.isArray(label) ? label.join(", ") || "none" : String(label);
  }

  function predictionText(p) {
    if (!p) return "—";
    if (Array.isArray(p.labels)) return p.labels.join(", ") || "none";
    return typeof p.confidence === "number" ? `${p.label} ${Math.round(100 * p.confidence)}%` : String(p.label);
  }

  function row(item) {
    const tr = el("tr");
    tr.dataset.itemId = String(item.id);
    const what = el("td", "search-item");
    what.appendChild(el("span", "muted small", `#${item.id} `));
    what.appendChild(el("span", "search-text", snippet(item.data)));
    tr.appendChild(what);
    tr.appendChild(el("td", "search-label", labelText(item.label)));
    tr.appendChild(el("td", "small", [...new Set(item.annotations.map((a) => a.annotator))].join(", ") || "—"));
    const model = el("td", item.disagrees ? "search-prediction disagrees" : "search-prediction", predictionText(item.prediction));
    if (item.disagrees) model.title = "the model, trained without this label, predicts another";
    tr.appendChild(model);
    const open = el("td", "actions");
    const link = el("a", "button small-button reopen", item.label === null ? "Label" : "Re-open");
    link.href = `${card.dataset.annotate}?item=${item.id}`;
    open.appendChild(link);
    tr.appendChild(open);
    return tr;
  }

  function params() {
    const out = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value !== "") out.set(name, value);
    out.set("page", String(page));
    return out;
  }

  async function search() {
    const mine = ++asked;
    status.textContent = "Searching…";
    let body;
    try {
      const res = await fetch(`${card.dataset.api}?${params()}`, { headers: { Accept: "application/json" } });
      body = await res.json();
      if (!res.ok) throw new Error(body && body.error ? body.error : `HTTP ${res.status}`);
    } catch (err) {
      if (mine === asked) status.textContent = `Search failed: ${err.message}`;
      return;
    }
    if (mine !== asked) return;
    const tbody = table.tBodies[0];
    tbody.replaceChildren(...body.items.map(row));
    table.hidden = body.items.length === 0;
    const first = (body.page - 1) * body.per_page + 1;
    status.textContent = body.total === 0 ? "No items match."
      : `${body.total === 1 ? "1 item matches" : `${body.total} items match`}; showing ${first}–${first + body.items.length - 1}.`;
    pager.hidden = body.pages <= 1;
    pager.querySelector('[data-step="-1"]').disabled = body.page <= 1;
    pager.querySelector('[data-step="1"]').disabled = body.page >= body.pages;
  }

  let typing = null;
  function fromScratch() {
    page = 1;
    search();
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(typing);
    fromScratch();
  });
  form.addEventListener("input", (e) => {
    clearTimeout(typing);
    // Typing waits for a pause (each search reads every item); a changed choice searches at once.
    typing = setTimeout(fromScratch, e.target.type === "search" ? 300 : 0);
  });
  pager.addEventListener("click", (e) => {
    const button = e.target.closest("[data-step]");
    if (!button) return;
    page = Math.max(1, page + Number(button.dataset.step));
    search();
  });
})();
