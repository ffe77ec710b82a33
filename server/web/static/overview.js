// The overview page: upload imports through the JSON API, and keep the live part
// (numbers, retrain progress, learning curve, model versions) current.
"use strict";

(() => {
  // With accounts on, changes made with the login session must carry its CSRF token.
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const CSRF = csrfMeta ? { "X-CSRF-Token": csrfMeta.content } : {};
  const live = document.getElementById("live");
  const form = document.getElementById("import-form");
  const status = document.getElementById("import-status");
  const result = document.getElementById("import-result");

  function liveState() {
    const box = live.querySelector(".live");
    return box ? { retraining: box.dataset.retraining === "true" } : {};
  }

  let timer = null;
  function schedule() {
    clearTimeout(timer);
    // Quick while a retrain runs, so its progress moves; slow otherwise.
    timer = setTimeout(refresh, liveState().retraining ? 1500 : 8000);
  }

  let last = null;
  async function refresh() {
    try {
      const res = await fetch(live.dataset.url, { headers: { Accept: "text/html" } });
      const html = res.ok ? await res.text() : null;
      // The fragment is rendered (and escaped) by the server's templates; swapping only
      // on change keeps the curve image from flickering.
      if (html !== null && html !== last) {
        // A "details" someone opened stays open across the swap.
        const open = [...live.querySelectorAll("details[id][open]")].map((d) => d.id);
        live.innerHTML = html;
        for (const id of open) {
          const details = document.getElementById(id);
          if (details) details.open = true;
        }
        last = html;
      }
    } catch (_) {
      // Offline: try again on the next tick.
    }
    schedule();
  }

  // The API names its options as query fields (text_column); here they are the form's fields, named as labeled.
  function inFormWords(message) {
    let out = message;
    for (const input of form.querySelectorAll("[name$='_column']")) {
      const label = input.closest("label");
      if (label) out = out.split(input.name).join(`“${label.firstChild.textContent.trim()}”`);
    }
    return out;
  }

  if (form) form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    if (!data.get("format")) data.delete("format");
    status.className = "status";
    status.textContent = "Importing…";
    result.hidden = true;
    try {
      const res = await fetch(form.action, { method: "POST", body: data, headers: { Accept: "application/json", ...CSRF } });
      const body = await res.json().catch(() => null);
      if (res.ok && body) {
        status.className = "status ok";
        status.textContent = `Imported ${body.imported} item${body.imported === 1 ? "" : "s"}` +
          (body.skipped ? `, skipped ${body.skipped} already present` : "") + ".";
        refresh();
        return;
      }
      status.className = "status error";
      status.textContent = "The import failed; nothing was added.";
      result.textContent = body && body.error ? inFormWords(body.error) : `The server answered HTTP ${res.status}.`;
      result.hidden = false;
    } catch (err) {
      status.className = "status error";
      status.textContent = `Network error: ${err.message}`;
    }
  });

  // The target accuracy: a project setting; the projection appears with the next retrain.
  const targetForm = document.getElementById("target-form");
  if (targetForm) targetForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = document.getElementById("target-status");
    const raw = targetForm.elements.target.value.trim();
    const target = raw === "" ? null : Number(raw) / 100;
    if (target !== null && !(target > 0 && target < 1)) {
      out.className = "status error";
      out.textContent = "Give the target as a percentage between 0 and 100, e.g. 90 (or leave it empty for none).";
      return;
    }
    out.className = "status";
    out.textContent = "Saving…";
    try {
      const res = await fetch(targetForm.action, {
        method: "PATCH", body: JSON.stringify({ target_accuracy: target }),
        headers: { "Content-Type": "application/json", Accept: "application/json", ...CSRF },
      });
      const body = await res.json().catch(() => null);
      if (res.ok) {
        out.className = "status ok";
        out.textContent = target === null ? "Target cleared." : "Saved: the projection is updated above.";
        refresh();
      } else {
        out.className = "status error";
        out.textContent = body && body.error ? body.error : `The server answered HTTP ${res.status}.`;
      }
    } catch (err) {
      out.className = "status error";
      out.textContent = `Network error: ${err.message}`;
    }
  });

  // Deleting: the server checks the typed name and refuses labeled items unless asked; we show its message.
  async function send(url, options, statusEl, explain) {
    // explain(status, body): the page's own words for a refusal, where the API's name its parameters.
    statusEl.className = "status";
    statusEl.textContent = "Deleting…";
    try {
      const res = await fetch(url, { ...options, headers: { Accept: "application/json", ...CSRF, ...(options.headers || {}) } });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        statusEl.className = "status error";
        statusEl.textContent = (explain && explain(res.status, body)) || (body && body.error ? body.error : `HTTP ${res.status}`);
        return null;
      }
      return body;
    } catch (err) {
      statusEl.className = "status error";
      statusEl.textContent = `Network error: ${err.message}`;
      return null;
    }
  }

  const delItems = document.getElementById("delete-items-form");
  if (delItems) delItems.addEventListener("submit", async (e) => {
    e.preventDefault();
    const statusEl = document.getElementById("delete-items-status");
    const ids = delItems.elements.ids.value.split(/[\s,]+/).filter(Boolean).map(Number);
    const withLabels = delItems.elements.with_labels.checked;
    if (!window.confirm(`Delete ${ids.length} item${ids.length === 1 ? "" : "s"}${withLabels ? " and their labels" : ""}?`)) return;
    const explain = (status, res) => {
      const n = res && res.details && res.details.labeled;
      if (status !== 409 || !n) return null;
      return `${n} of these items ${n === 1 ? "carries" : "carry"} labels; nothing was deleted. Export them first ` +
        "if you need them, then tick \u201calso items that carry labels\u201d and delete again.";
    };
    const body = await send(delItems.action, { method: "POST", body: JSON.stringify({ ids, with_labels: withLabels }),
                                               headers: { "Content-Type": "application/json" } }, statusEl, explain);
    if (body) {
      statusEl.className = "status ok";
      statusEl.textContent = `Deleted ${body.deleted} item${body.deleted === 1 ? "" : "s"}` +
        (body.labeled ? ` (${body.labeled} labeled)` : "") + ".";
      delItems.reset();
      refresh();
    }
  });

  const delProject = document.getElementById("delete-project-form");
  if (delProject) delProject.addEventListener("submit", async (e) => {
    e.preventDefault();
    const statusEl = document.getElementById("delete-project-status");
    const typed = delProject.elements.confirm.value;
    if (typed !== delProject.dataset.name) {
      statusEl.className = "status error";
      statusEl.textContent = "The name does not match; nothing was deleted.";
      return;
    }
    const url = `${delProject.action}?confirm=${encodeURIComponent(typed)}`;
    if (await send(url, { method: "DELETE" }, statusEl)) window.location.assign(delProject.dataset.home);
  });

  schedule();
})();
