// The labeling page. One item at a time; answers go out in the background so the
// next item appears at once, from a prefetched buffer. Unsent answers wait in an
// outbox (kept in localStorage, so a reload or a dropped connection loses nothing)
// and are retried; the server dedupes them by idempotency_key.
// Item data is untrusted: it only ever reaches the page through textContent / src.
"use strict";

(() => {
  // With accounts on, changes made with the login session must carry its CSRF token.
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const CSRF = csrfMeta ? { "X-CSRF-Token": csrfMeta.content } : {};
  const config = JSON.parse(document.getElementById("assay-config").textContent);
  const $ = (id) => document.getElementById(id);
  // One outbox per user and project: answers queued under one login must never go out under another
  // (a login that ran out, then someone else logs in on this browser). session.js drops a user's
  // outboxes at logout by this prefix.
  const OUTBOX_KEY = `assay-outbox:${config.user}:${config.project_id}`;
  const LEGACY_KEY = `assay-outbox-${config.project_id}`; // before outboxes were per user: owner unknown
  const MAX_RETRY_MS = 15000;
  // The label each key picks (projects.label_keys chose them); either case of a letter works, so
  // Shift or Caps Lock never gets in the way.
  const KEYMAP = new Map();
  config.keys.forEach((key, i) => { if (key !== null) KEYMAP.set(key.toLowerCase(), config.labels[i]); });
  const RECENT_KEY = `assay-recent:${config.user}:${config.project_id}`;

  const state = {
    current: null, // {item, shownAt, chosen: Set of labels (multi-label)}
    buffer: [], // items fetched but not shown yet, best first
    seen: new Set(), // ids this page has held: a refill never shows one twice
    history: [], // answers of this page, newest last: [{item, op}] (what undo walks back)
    outbox: loadOutbox(), // ops not yet confirmed by the server, in order
    loggedOut: false, // the logout form went out: nothing more may be written for this user
    sending: false,
    retryDelay: 0,
    retryTimer: null,
    backlog: false, // a send failed and the outbox has not been empty since: the badge stays until it is

    // The last request got no answer (or a gateway's 502-504): the server is down or out of reach. The page
    // says so instead of "nothing left", and comes back by itself when a request is answered again.
    unreachable: false,
    fetching: false,
    stats: null,
  };
  for (const op of state.outbox) if (op.kind === "answer") state.seen.add(op.item_id);

  // -- the outbox ------------------------------------------------------------------

  function loadOutbox() {
    try {
      adoptLegacyOutbox();
      const ops = JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]");
      return Array.isArray(ops) ? ops : [];
    } catch (_) {
      return [];
    }
  }

  function adoptLegacyOutbox() {
    // An outbox saved by the old per-project key: without accounts it can only be this page's
    // (everyone is "local"); with accounts nobody can tell whose it is, so it is dropped unsent.
    const legacy = localStorage.getItem(LEGACY_KEY);
    if (legacy === null) return;
    if (!config.auth && localStorage.getItem(OUTBOX_KEY) === null) localStorage.setItem(OUTBOX_KEY, legacy);
    localStorage.removeItem(LEGACY_KEY);
  }

  function saveOutbox() {
    try {
      if (state.loggedOut) return; // session.js has dropped this user's outboxes; a late save must not restore one
      if (state.outbox.length) localStorage.setItem(OUTBOX_KEY, JSON.stringify(state.outbox));
      else localStorage.removeItem(OUTBOX_KEY);
    } catch (_) {
      // Storage full or disabled: the outbox still lives in memory for this page.
    }
    renderOutbox();
  }

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; getRandomValues works everywhere.
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function send(op) {
    const res = op.kind === "answer"
      ? await fetch(`${config.api}/annotations`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", ...CSRF },
        body: JSON.stringify(op.body),
      })
      : await fetch(`${config.api}/annotations/${op.item_id}`, { method: "DELETE", headers: { Accept: "application/json", ...CSRF } });
    reached(res);
    if (res.ok) return "done";
    if (op.kind === "undo" && res.status === 404) return "done"; // nothing left to undo
    if (res.status >= 500 || res.status === 408 || res.status === 429) return "retry";
    const why = await errorText(res);
    if (res.status === 401 || (res.status === 403 && /csrf/i.test(why))) {
      // The login ran out: keep the answers (localStorage holds them) for after the next login.
      showMessage("Your login expired: log in again, then reload this page. Unsent answers are kept and will be sent.");
      return "retry";
    }
    // The server refused this answer for good (e.g. the item is gone): retrying cannot help.
    showMessage(`Item ${op.item_id}: the server refused this ${op.kind === "answer" ? "answer" : "undo"}: ${why}`);
    return "dropped";
  }

  async function pump() {
    if (state.sending || state.loggedOut) return;
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    state.sending = true;
    renderOutbox();
    try {
      while (state.outbox.length) {
        const op = state.outbox[0];
        let outcome;
        try {
          outcome = await send(op);
        } catch (_) {
          unreached(); // network error
          outcome = "retry";
        }
        if (outcome === "retry") {
          state.backlog = true;
          state.retryDelay = Math.min(MAX_RETRY_MS, state.retryDelay ? state.retryDelay * 2 : 1000);
          state.retryTimer = setTimeout(pump, state.retryDelay);
          break;
        }
        state.retryDelay = 0;
        const at = state.outbox.indexOf(op);
        if (at >= 0) state.outbox.splice(at, 1);
        saveOutbox();
        scheduleStats(600);
      }
    } finally {
      state.sending = false;
      renderOutbox();
    }
  }

  function renderOutbox() {
    const badge = $("outbox");
    const n = state.outbox.length;
    if (!n) state.backlog = false;
    $("unreachable").hidden = !state.unreachable;
    // Until the outbox is empty, not just until the first resend succeeds: the rest may still fail.
    if (n && (state.retryDelay > 0 || state.backlog)) {
      badge.textContent = `${n} unsent, retrying`;
      badge.hidden = false;
    } else {
      badge.hidden = true;
    }
    renderOffline();
  }

  // -- the connection --------------------------------------------------------------

  function reached(res) {
    // A gateway's 502-504 means the server behind it does not answer: as good as no answer.
    if ([502, 503, 504].includes(res.status)) {
      unreached();
      return;
    }
    if (!state.unreachable) return;
    state.unreachable = false;
    // Back: send what waited at once rather than at the end of the retry timer's backoff (up to 15 s),
    // and fetch items if the page ran dry meanwhile.
    if (state.retryTimer !== null) {
      clearTimeout(state.retryTimer);
      state.retryTimer = null;
      setTimeout(pump, 0);
    }
    renderOutbox();
    renderDone();
    if (!state.current && !state.buffer.length) setTimeout(refill, 0);
  }

  function unreached() {
    if (state.unreachable) return;
    state.unreachable = true;
    renderOutbox();
    renderDone();
  }

  function renderOffline() {
    // The out-of-items card while the server does not answer: with the count of labels kept in this browser.
    const n = state.outbox.length;
    const what = n === 1 ? "1 label waits" : `${n} labels wait`;
    $("done-offline-text").textContent = n
      ? `${what} in this browser to be sent. They are kept here, across a reload, and sent as soon as `
        + "the server answers again; this page then goes on by itself."
      : "Nothing waits to be sent. This page goes on by itself as soon as the server answers again.";
  }

  // -- the buffer ------------------------------------------------------------------

  function held() {
    // Items leased to us that the server has not seen answered: a queue pull returns them first.
    const unsent = state.outbox.filter((op) => op.kind === "answer").length;
    return state.buffer.length + (state.current ? 1 : 0) + unsent;
  }

  async function refill() {
    if (state.fetching) return;
    state.fetching = true;
    try {
      const want = Math.max(1, config.buffer - state.buffer.length);
      const n = Math.min(100, held() + want);
      const res = await fetch(`${config.api}/queue?n=${n}`, { headers: { Accept: "application/json" } });
      reached(res);
      if (!res.ok && !state.unreachable) {
        showMessage(`Could not fetch items: ${await errorText(res)}`);
        return;
      }
      for (const item of res.ok ? await res.json() : []) {
        if (state.seen.has(item.id)) continue;
        state.seen.add(item.id);
        state.buffer.push(item);
        warm(item);
      }
    } catch (_) {
      unreached(); // the stats poll calls refill again
    } finally {
      state.fetching = false;
    }
    if (state.current) return;
    // An empty pull leaves the next try to the stats poll: showNext would refill at once, and again.
    if (state.buffer.length) showNext();
    else show(null);
  }

  function refillIfLow() {
    if (state.buffer.length < config.refill_below) refill();
  }

  function warm(item) {
    if (config.item_type === "image" && item.data && typeof item.data.image === "string") {
      new Image().src = mediaUrl(item.data.image);
    }
  }

  // -- showing an item -------------------------------------------------------------

  function showNext() {
    const item = state.buffer.shift();
    show(item || null);
    refillIfLow();
  }

  function show(item) {
    // A re-opened item starts with the labels it has, so the page shows what changing them changes.
    const chosen = new Set(item && item.reopened ? [].concat(item.label ?? []) : []);
    state.current = item ? { item, shownAt: performance.now(), chosen } : null;
    const card = $("item");
    const waiting = !item && state.fetching; // more may be on the way: not "done" yet
    $("done").hidden = Boolean(item) || waiting;
    renderDone();
    card.hidden = !item && !waiting;
    $("labels").hidden = !item;
    document.querySelector(".controls").hidden = !item && state.history.length === 0;
    if (picker) picker.showItem(item);
    renderButtons();
    $("undo").disabled = state.history.length === 0;
    if (!item) {
      card.dataset.itemId = "";
      if (waiting) {
        $("item-body").replaceChildren(el("p", "muted", "Loading the next item…"));
        $("prediction").replaceChildren();
        $("picked").textContent = "";
      }
      return;
    }
    card.dataset.itemId = String(item.id);
    renderBody(item);
    renderPrediction(item.prediction);
    renderPicked(item);
  }

  function renderDone() {
    // An empty project is not a finished one: it needs an import, not a rest. (An item already
    // seen proves items exist even before the next stats poll counts them.)
    const offline = state.unreachable;
    const empty = !offline && state.seen.size === 0 && (state.stats ? state.stats.items : config.items) === 0;
    $("done-offline").hidden = !offline;
    $("done-empty").hidden = !empty;
    $("done-all").hidden = empty || offline;
  }

  function mediaUrl(path) {
    return config.media + String(path).replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function display(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function kvTable(entries, className) {
    const table = el("table", className);
    for (const [key, value] of entries) {
      const row = table.insertRow();
      row.appendChild(el("th", "", key));
      row.appendChild(el("td", "", display(value)));
    }
    return table;
  }

  function renderBody(item) {
    const body = $("item-body");
    const data = item.data || {};
    body.replaceChildren();
    let shown = [];
    if (config.item_type === "image") {
      if (typeof data.image === "string" && data.image) {
        const img = el("img", "item-image");
        img.alt = `item ${item.id}`;
        // Tiny images (8x8 digits, icons) are scaled up with hard pixel edges instead of shown as a speck.
        img.addEventListener("load", () => img.classList.toggle("tiny", img.naturalWidth < 160 && img.naturalHeight < 160));
        img.src = mediaUrl(data.image);
        body.appendChild(img);
      } else {
        body.appendChild(el("p", "muted", "This item has no image path."));
      }
      shown = ["image"];
    } else if (config.item_type === "tabular") {
      body.appendChild(kvTable(Object.entries(data), "item-table"));
      shown = Object.keys(data);
    } else {
      body.appendChild(el("p", "item-text", display(data.text)));
      shown = ["text"];
    }
    // Other columns of the import ride along as context, folded away so they never
    // stand between the annotator and the item (they may even hold an answer).
    const extra = Object.entries(data).filter(([key]) => !shown.includes(key));
    if (extra.length) {
      const details = el("details", "item-extra");
      details.appendChild(el("summary", "", `${extra.length} more field${extra.length === 1 ? "" : "s"}`));
      details.appendChild(kvTable(extra, ""));
      body.appendChild(details);
    }
  }

  function pct(p) {
    return `${Math.round(100 * p)}%`;
  }

  function renderPrediction(pred) {
    const box = $("prediction");
    box.replaceChildren();
    if (!pred) {
      box.appendChild(el("span", "muted", "Model: no model yet"));
      if ($("accept-hint")) $("accept-hint").hidden = true;
      return;
    }
    box.appendChild(document.createTextNode("Model: "));
    if (Array.isArray(pred.labels)) {
      box.appendChild(el("strong", "", pred.labels.length ? pred.labels.join(", ") : "none"));
      const probs = Object.entries(pred.probs || {}).map(([name, p]) => `${name} ${pct(p)}`).join(" · ");
      if (probs) box.appendChild(el("span", "muted", ` (${probs})`));
    } else {
      box.appendChild(el("strong", "", display(pred.label)));
      if (typeof pred.confidence === "number") box.appendChild(el("span", "muted", ` ${pct(pred.confidence)} sure`));
    }
    // One key takes the model's first guess (with a picker, key 1 does: it is the first suggestion).
    const hint = $("accept-hint");
    if (hint) {
      hint.replaceChildren();
      hint.hidden = Array.isArray(pred.labels) || typeof pred.label !== "string";
      if (!hint.hidden) {
        hint.appendChild(el("kbd", "", picker ? "1" : "Enter"));
        hint.appendChild(document.createTextNode(" accepts it"));
      }
    }
  }

  function renderPicked(item) {
    if (item.reopened) {
      const label = [].concat(item.label ?? []).join(", ");
      $("picked").textContent = label ? `re-opened · your label: ${label}` : "re-opened · not labeled by you yet";
      return;
    }
    const parts = [`picked by ${item.strategy || "random"}`];
    if (typeof item.score === "number") parts.push(`score ${item.score.toPrecision(3)}`);
    if (item.model_version) parts.push(`model v${item.model_version}`);
    $("picked").textContent = parts.join(" · ");
  }

  function renderButtons() {
    const chosen = state.current ? state.current.chosen : new Set();
    for (const button of document.querySelectorAll(".label-button, .suggestion")) {
      const on = chosen.has(button.dataset.label);
      button.classList.toggle("chosen", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    }
    if (picker) picker.renderStatus();
  }

  function flash(label) {
    const button = document.querySelector(`.label-button[data-label="${CSS.escape(label)}"]`);
    if (!button) return;
    button.classList.remove("flash");
    void button.offsetWidth; // restart the animation
    button.classList.add("flash");
  }

  // -- answering -------------------------------------------------------------------

  function answer(payload) {
    if (!state.current) return;
    const { item, shownAt } = state.current;
    const key = newKey();
    const op = {
      kind: "answer",
      item_id: item.id,
      body: { item_id: item.id, ...payload, idempotency_key: key, duration_ms: Math.max(0, Math.round(performance.now() - shownAt)) },
    };
    state.outbox.push(op);
    state.history.push({ item, op });
    saveOutbox();
    showNext();
    if (state.retryTimer === null) pump(); // while offline, the retry timer paces the sends
  }

  function pick(label) {
    if (!state.current) return;
    if (config.multi_label) {
      const chosen = state.current.chosen;
      if (chosen.has(label)) chosen.delete(label);
      else chosen.add(label);
      if (picker) picker.clear();
      renderButtons();
      return;
    }
    flash(label);
    if (picker) picker.remember([label]);
    answer({ label, ...suggestion() });
  }

  function suggestion() {
    // What the page showed as the model's first guess for this answer (issue 28: acceptance, and anchoring).
    const pred = state.current && state.current.item.prediction;
    return pred && typeof pred.label === "string" ? { suggested: pred.label } : {};
  }

  function acceptSuggestion() {
    const pred = state.current && state.current.item.prediction;
    if (pred && typeof pred.label === "string" && config.labels.includes(pred.label)) pick(pred.label);
  }

  function submitMulti() {
    if (!state.current) return;
    const chosen = state.current.chosen;
    const labels = config.labels.filter((label) => chosen.has(label));
    if (picker) picker.remember(labels);
    answer({ labels });
  }

  function skip() {
    answer({ skip: true });
  }

  function undo() {
    const last = state.history.pop();
    if (!last) return;
    const at = state.outbox.indexOf(last.op);
    const inFlight = state.sending && at === 0;
    if (at >= 0 && !inFlight) {
      state.outbox.splice(at, 1); // never reached the server: forgetting it is the undo
    } else {
      state.outbox.push({ kind: "undo", item_id: last.item.id });
    }
    saveOutbox();
    if (state.current) state.buffer.unshift(state.current.item);
    show(last.item);
    if (state.retryTimer === null) pump();
  }

  // -- progress --------------------------------------------------------------------

  let statsTimer = null;

  function scheduleStats(ms) {
    clearTimeout(statsTimer);
    statsTimer = setTimeout(pollStats, ms);
  }

  async function pollStats() {
    try {
      const res = await fetch(`${config.api}/stats`, { headers: { Accept: "application/json" } });
      reached(res);
      if (res.ok) renderStats(await res.json());
      if (state.stats) noteModelVersion(state.stats.model_version);
    } catch (_) {
      unreached(); // the next poll tries again
    }
    if (!state.current) refill();
    if (state.outbox.length && !state.sending && state.retryTimer === null) pump();
    scheduleStats(config.stats_every_ms);
  }

  function renderStats(stats) {
    state.stats = stats;
    const parts = [`${stats.labeled} / ${stats.items} labeled`];
    if (stats.skipped) parts.push(`${stats.skipped} skipped`);
    parts.push(stats.model_version ? `model v${stats.model_version}` : "no model yet");
    const rk = stats.ranked;
    if (rk && rk.pool && rk.ranked !== null && rk.ranked < rk.pool) {
      parts.push(`ranked among ${rk.ranked.toLocaleString("en")} of ${rk.pool.toLocaleString("en")} items`);
    }
    const fz = stats.featurized;
    if (fz && fz.total && fz.done < fz.total) parts.push(`embedding ${Math.floor((100 * fz.done) / fz.total)}%`);
    parts.push(stats.strategy);
    if (stats.retraining) {
      const p = stats.retrain_progress || {};
      parts.push(`retraining${p.stage ? ` (${p.stage})` : ""}…`);
    }
    renderDone();
    const line = $("progress");
    line.textContent = parts.join(" · ");
    line.classList.toggle("busy", Boolean(stats.retraining));
    renderModelError(stats.last_error);
  }

  function renderModelError(error) {
    // In plain sight: annotators who cannot see that the model fails keep labeling random items.
    $("model-error").hidden = !error;
    const text = $("model-error-text");
    if (error && text.textContent !== error) text.textContent = error;
  }

  // -- newer predictions for held items ------------------------------------------------

  let knownModel; // the model version the stats poll last reported (undefined: none yet)

  function noteModelVersion(version) {
    if (version === knownModel) return;
    const first = knownModel === undefined;
    knownModel = version;
    if (first && !version) return; // no model yet: nothing newer to show
    refreshPredictions();
  }

  async function refreshPredictions() {
    // Prefetched items carry the prediction of the model that ranked them; after a retrain ask for the new one.
    const held = (state.current ? [state.current.item] : []).concat(state.buffer);
    if (!held.length) return;
    try {
      const ids = held.map((item) => item.id).join(",");
      const res = await fetch(`${config.api}/predictions?ids=${ids}`, { headers: { Accept: "application/json" } });
      if (!res.ok) return;
      const fresh = (await res.json()).items || {};
      for (const item of held) if (fresh[item.id]) Object.assign(item, fresh[item.id]);
    } catch (_) {
      return; // offline: the items keep the prediction they came with
    }
    if (state.current && held.includes(state.current.item)) {
      renderPrediction(state.current.item.prediction);
      renderPicked(state.current.item);
      if (picker) {
        picker.refresh(state.current.item);
        renderButtons();
      }
    }
  }

  // -- re-opening one item (?item=<id>: the project page's search links here) ---------

  async function reopen(id) {
    try {
      const res = await fetch(`${config.api}/items/${id}`, { headers: { Accept: "application/json" } });
      if (!res.ok) {
        showMessage(`Could not re-open item ${id}: ${await errorText(res)}`);
        return;
      }
      const item = await res.json();
      if (item.refusal) {
        // Its places are others' (overlap): answering would be refused, so the queue's items come instead.
        showMessage(`Item ${id} cannot be relabeled here: ${item.refusal}`);
        return;
      }
      state.seen.add(item.id);
      if (state.current) state.buffer.unshift(state.current.item); // the stats poll's refill came first
      show({ ...item, reopened: true });
    } catch (_) {
      showMessage(`Could not re-open item ${id}: the server did not answer`);
    }
  }

  // -- messages --------------------------------------------------------------------

  let messageTimer = null;

  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => { box.hidden = true; }, 10000);
  }

  async function errorText(res) {
    try {
      const body = await res.json();
      if (body && body.error) return body.error;
    } catch (_) {
      // not JSON
    }
    return `HTTP ${res.status}`;
  }

  // -- the type-ahead picker (projects with more labels than keys) -------------------------
  // Keys 1-9 are the item's suggestions: the model's first guesses (the queue's prediction.top),
  // then labels this tab used lately. Letters narrow the label buttons to those whose name holds
  // what was typed, best match first; arrows move the highlight, Enter picks it, Escape clears.

  const picker = config.picker ? makePicker() : null;

  function makePicker() {
    const input = $("picker-input");
    const box = $("labels");
    const strip = $("suggestions");
    const status = $("picker-status");
    const buttons = new Map(Array.from(box.querySelectorAll(".label-button"), (b) => [b.dataset.label, b]));
    const known = new Set(config.labels);
    // Names as typed: case and the separators of names like book_flight do not count.
    const fold = (text) => text.toLowerCase().replace(/[\s_\-./:]+/g, " ");
    const names = config.labels.map((label) => {
      const name = fold(label).trim();
      return { label, name, spaced: ` ${name}`, words: name.split(" ") };
    });
    const MAX_SLOTS = 9;
    const MAX_RECENT = 8;
    let recent = loadRecent();
    let ranking = config.labels; // the item's order: the model's guesses first, then the project's order
    let shown = ranking; // the buttons in view, in order
    let slots = []; // [{label, p}] behind keys 1..9; p is null for a recent label
    let at = -1; // the highlighted entry of shown, -1: none

    function loadRecent() {
      try {
        const list = JSON.parse(sessionStorage.getItem(RECENT_KEY) || "[]");
        return Array.isArray(list) ? list.filter((label) => known.has(label)) : [];
      } catch (_) {
        return [];
      }
    }

    function remember(labels) {
      recent = labels.concat(recent.filter((label) => !labels.includes(label))).slice(0, MAX_RECENT);
      try {
        sessionStorage.setItem(RECENT_KEY, JSON.stringify(recent));
      } catch (_) {
        // Storage disabled: the list lives in memory for this page.
      }
    }

    function guesses(pred) {
      // [label, p] best first; older queue rows (before prediction.top) still give their best guess.
      if (!pred) return [];
      if (Array.isArray(pred.top)) return pred.top;
      if (pred.probs) return Object.entries(pred.probs).sort((a, b) => b[1] - a[1]);
      return pred.label !== undefined ? [[pred.label, pred.confidence]] : [];
    }

    function showItem(item) {
      rank(item);
      input.value = "";
      filter();
      $("picker").hidden = !item;
      if (item && document.activeElement !== input) input.focus({ preventScroll: true });
    }

    function refresh(item) {
      // A newer model's guesses for the item on screen: new suggestions, and the search stays.
      rank(item);
      filter();
    }

    function rank(item) {
      slots = [];
      for (const [label, p] of guesses(item && item.prediction)) {
        if (known.has(label) && slots.length < 5) slots.push({ label, p: typeof p === "number" ? p : null });
      }
      const guessed = slots.map((slot) => slot.label);
      for (const label of recent) {
        if (slots.length >= MAX_SLOTS) break;
        if (!guessed.includes(label)) slots.push({ label, p: null, recent: true });
      }
      ranking = guessed.length ? guessed.concat(config.labels.filter((label) => !guessed.includes(label))) : config.labels;
      renderSlots();
    }

    function renderSlots() {
      strip.replaceChildren(...slots.map((slot, i) => {
        const button = el("button", `suggestion${slot.recent ? " recent" : ""}`);
        button.type = "button";
        button.dataset.label = slot.label;
        button.dataset.key = String(i + 1);
        button.title = slot.recent ? "used lately" : "the model's guess";
        button.append(el("kbd", "", String(i + 1)), el("span", "label-name", slot.label));
        if (slot.p !== null) button.append(el("span", "prob", pct(slot.p)));
        else if (slot.recent) button.append(el("span", "prob", "recent"));
        return button;
      }));
    }

    function tier(entry, query, words) {
      // 0: the name starts with the query, 1: a word of it does, 2: it holds the query,
      // 3: the query's words start the name's words in order ("acc bal" finds account_balance).
      if (entry.name.startsWith(query)) return 0;
      if (entry.spaced.includes(` ${query}`)) return 1;
      if (entry.name.includes(query)) return 2;
      if (words.length < 2) return -1;
      let w = 0;
      for (const word of entry.words) if (w < words.length && word.startsWith(words[w])) w++;
      return w === words.length ? 3 : -1;
    }

    function filter() {
      const query = fold(input.value).trimStart();
      if (!query) {
        shown = ranking;
        at = -1;
      } else {
        const rank = new Map(ranking.map((label, i) => [label, i]));
        const words = query.trim().split(" ");
        const hits = [];
        for (const entry of names) {
          const t = tier(entry, query, words);
          if (t >= 0) hits.push([t, rank.get(entry.label), entry.label]);
        }
        hits.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        shown = hits.map((hit) => hit[2]);
        at = shown.length ? 0 : -1;
      }
      layout();
    }

    let laid = null; // the order last put in the page: reordering 150 buttons only when it changed
    function layout() {
      const visible = new Set(shown);
      if (laid !== shown) {
        const order = shown.map((label) => buttons.get(label));
        if (shown.length < buttons.size) for (const [label, button] of buttons) if (!visible.has(label)) order.push(button);
        // From the end, moving only the buttons out of place: a new item's five guesses move about ten
        // buttons, where putting back all 150 restyled every one of them.
        let next = null;
        for (let i = order.length - 1; i >= 0; i--) {
          if (order[i].nextSibling !== next) box.insertBefore(order[i], next);
          next = order[i];
        }
        laid = shown;
      }
      for (const [label, button] of buttons) {
        const hide = !visible.has(label);
        if (button.hidden !== hide) button.hidden = hide;
      }
      renderHighlight();
    }

    function renderHighlight() {
      const target = at >= 0 ? shown[at] : null;
      for (const button of box.querySelectorAll(".label-button.highlight")) button.classList.remove("highlight");
      if (target !== null) {
        const button = buttons.get(target);
        button.classList.add("highlight");
        button.scrollIntoView({ block: "nearest" });
      }
      renderStatus();
    }

    function renderStatus() {
      const parts = [];
      if (input.value.trim()) {
        parts.push(shown.length ? `${shown.length} match${shown.length === 1 ? "" : "es"}` : "no label matches");
      }
      if (at >= 0) parts.push(`Enter ${config.multi_label ? "toggles" : "picks"} ${shown[at]}`);
      if (config.multi_label && state.current && state.current.chosen.size) {
        parts.push(`chosen: ${config.labels.filter((label) => state.current.chosen.has(label)).join(", ")}`);
      }
      status.textContent = parts.join(" · ");
    }

    function move(step) {
      if (!shown.length) return;
      at = at < 0 ? (step > 0 ? 0 : shown.length - 1) : (at + step + shown.length) % shown.length;
      renderHighlight();
    }

    function clear() {
      if (!input.value && at < 0) return;
      input.value = "";
      filter();
    }

    function key(e, inInput) {
      // true: the picker took the key (the caller does nothing more with it).
      if (/^[1-9]$/.test(e.key)) {
        e.preventDefault();
        const slot = slots[Number(e.key) - 1];
        if (slot && !e.repeat) pick(slot.label);
        return true;
      }
      switch (e.key) {
        case "ArrowDown":
          e.preventDefault();
          move(1);
          return true;
        case "ArrowUp":
          e.preventDefault();
          move(-1);
          return true;
        case "Escape":
          e.preventDefault();
          clear();
          return true;
        case "Enter":
          if (at < 0) return false; // multi-label: submits; single-label: nothing to pick
          e.preventDefault();
          if (!e.repeat) pick(shown[at]);
          return true;
        case "Backspace":
          if (!input.value) return false; // an empty search: undo, as on any labeling page
          if (!inInput) {
            e.preventDefault();
            input.value = input.value.slice(0, -1);
            filter();
          }
          return true;
        default:
          break;
      }
      if (e.key.length !== 1) return false;
      if (!inInput) {
        // Typed while the focus was elsewhere (after a click): the letter still goes to the search.
        e.preventDefault();
        input.focus({ preventScroll: true });
        input.value += e.key;
        filter();
      }
      return true;
    }

    input.addEventListener("input", filter);
    strip.addEventListener("click", (e) => {
      const button = e.target.closest(".suggestion");
      if (button) pick(button.dataset.label);
    });
    return { showItem, refresh, remember, clear, key, renderStatus, input };
  }

  // -- input -----------------------------------------------------------------------

  document.addEventListener("keydown", (e) => {
    const inPicker = picker !== null && e.target === picker.input;
    if (!inPicker && e.target instanceof Element && e.target.closest("input, textarea, select, [contenteditable]")) return;
    if (e.altKey || e.metaKey) return;
    if (e.ctrlKey) {
      if (e.key === "z" || e.key === "Z") {
        e.preventDefault();
        undo();
      } else if (picker && (e.key === "s" || e.key === "S")) {
        e.preventDefault(); // letters belong to the search, so skipping takes Ctrl (and the browser's save waits)
        if (!e.repeat) skip();
      }
      return;
    }
    if (picker && state.current && picker.key(e, inPicker)) return;
    if (e.key === "Backspace") {
      e.preventDefault(); // never navigate back
      undo();
      return;
    }
    if (e.repeat) return; // a held key must not answer a run of items
    const label = KEYMAP.get(e.key.toLowerCase());
    if (label !== undefined) {
      e.preventDefault();
      pick(label);
    } else if (e.key === "s" || e.key === "S") {
      e.preventDefault();
      skip();
    } else if (e.key === "Enter" && config.multi_label) {
      e.preventDefault(); // or a focused label button would toggle as well
      submitMulti();
    } else if (e.key === "Enter" && !picker) {
      // Single-label with a key per label: Enter takes the model's first guess (a focused button must not
      // answer too). With the picker, Enter belongs to the search (nothing matching picks nothing); key 1 is
      // the first guess there.
      e.preventDefault();
      acceptSuggestion();
    }
  });

  $("labels").addEventListener("click", (e) => {
    const button = e.target.closest(".label-button");
    if (button) pick(button.dataset.label);
  });
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  if ($("submit")) $("submit").addEventListener("click", submitMulti);
  window.addEventListener("online", pump);
  document.addEventListener("assay:logout", () => {
    state.loggedOut = true;
    clearTimeout(state.retryTimer);
  });

  renderOutbox();
  (config.reopen ? reopen(config.reopen) : Promise.resolve()).then(refill);
  pollStats();
  if (state.outbox.length) pump();
})();
