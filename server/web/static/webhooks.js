// The overview's webhooks card (owners only): add and delete webhooks, and show the delivery log.
// Everything the server sent is put in the page as text, never as HTML: URLs and errors come from outside.
"use strict";

(() => {
  const card = document.getElementById("webhooks");
  if (!card) return;
  const api = card.dataset.api;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const headers = { Accept: "application/json", ...(csrfMeta ? { "X-CSRF-Token": csrfMeta.content } : {}) };
  const form = document.getElementById("webhook-form");
  const status = document.getElementById("webhook-status");
  const secretBox = document.getElementById("webhook-secret");
  const list = document.querySelector("#webhook-list tbody");
  const logTable = document.getElementById("webhook-log");
  const logEmpty = document.getElementById("webhook-log-empty");

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  function say(text, kind) {
    status.className = kind ? `status ${kind}` : "status";
    status.textContent = text;
  }

  async function call(url, options = {}) {
    const res = await fetch(url, { ...options, headers: { ...headers, ...(options.headers || {}) } });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(body && body.error ? body.error : `The server answered HTTP ${res.status}.`);
    return body;
  }

  function when(iso) {
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
  }

  let hooks = [];
  function showHooks() {
    list.replaceChildren();
    for (const hook of hooks) {
      const row = list.insertRow();
      row.dataset.hookId = hook.id;
      cell(row, hook.url).className = "webhook-url";
      cell(row, hook.events.join(", "));
      cell(row, hook.deliveries.delivered, "num");
      cell(row, hook.deliveries.pending, "num");
      cell(row, hook.deliveries.failed, "num");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button small danger";
      button.textContent = "Delete";
      button.addEventListener("click", () => remove(hook));
      cell(row, "", "actions").append(button);
    }
  }

  function showLog(deliveries) {
    const body = logTable.tBodies[0];
    body.replaceChildren();
    const urls = new Map(hooks.map((h) => [h.id, h.url]));
    for (const d of deliveries) {
      const hook = urls.get(d.hook_id) || `#${d.hook_id}`;
      if (d.log.length === 0) {
        const row = body.insertRow();
        row.className = "delivery-waiting";
        cell(row, when(d.created_at));
        cell(row, d.event);
        cell(row, hook);
        cell(row, "–", "num");
        cell(row, "waiting");
        cell(row, "");
      }
      // Newest attempt first, like the deliveries.
      for (const a of [...d.log].reverse()) {
        const row = body.insertRow();
        row.className = a.error ? "delivery-error" : "delivery-ok";
        cell(row, when(a.at));
        cell(row, d.event);
        cell(row, hook);
        cell(row, a.attempt, "num");
        cell(row, a.status_code === null ? "no answer" : a.status_code);
        let note = a.error || "delivered";
        if (a === d.log[d.log.length - 1] && d.state === "pending" && d.next_attempt_at) {
          note += ` (next try ${new Date(d.next_attempt_at * 1000).toLocaleTimeString()})`;
        } else if (a === d.log[d.log.length - 1] && d.state === "failed") {
          note += " (given up)";
        }
        cell(row, note, "delivery-note");
      }
    }
    logTable.hidden = deliveries.length === 0;
    logEmpty.hidden = deliveries.length !== 0;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      hooks = await call(api);
      showHooks();
      showLog(await call(`${api}/deliveries?limit=50`));
    } catch (_) {
      // Offline or logged out: try again on the next tick.
    }
    timer = setTimeout(refresh, 5000);
  }

  async function remove(hook) {
    if (!window.confirm(`Delete the webhook to ${hook.url}? Its deliveries not yet made go with it.`)) return;
    try {
      await call(`${api}/${hook.id}`, { method: "DELETE" });
      say("Webhook deleted.", "ok");
    } catch (err) {
      say(err.message, "error");
    }
    refresh();
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const events = [...form.querySelectorAll("input[name=events]:checked")].map((box) => box.value);
    const payload = { url: form.elements.url.value.trim(), events };
    if (form.elements.secret.value) payload.secret = form.elements.secret.value;
    say("Saving…");
    secretBox.hidden = true;
    try {
      const hook = await call(api, { method: "POST", body: JSON.stringify(payload),
                                     headers: { "Content-Type": "application/json" } });
      say("Webhook added.", "ok");
      if (hook.secret) {
        secretBox.querySelector("code").textContent = hook.secret;
        secretBox.hidden = false;
      }
      form.elements.url.value = "";
      form.elements.secret.value = "";
    } catch (err) {
      say(err.message, "error");
    }
    refresh();
  });

  refresh();
})();
