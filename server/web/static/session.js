// Every page of a logged-in user: logging out drops that user's unsent answers from this
// browser, so they neither linger on a shared machine nor wait for the next login.
// The annotate page keeps them under "assay-outbox:<user>:<project id>" (see annotate.js).
"use strict";

(() => {
  const form = document.querySelector("form.whoami");
  if (!form) return;
  const prefix = `assay-outbox:${form.dataset.user}:`;

  function outboxKeys() {
    const keys = [];
    try {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (key && key.startsWith(prefix)) keys.push(key);
      }
    } catch (_) {
      // Storage disabled: nothing was kept.
    }
    return keys;
  }

  function unsentCount(keys) {
    let n = 0;
    for (const key of keys) {
      try {
        const ops = JSON.parse(localStorage.getItem(key) || "[]");
        if (Array.isArray(ops)) n += ops.filter((op) => op.kind === "answer").length;
      } catch (_) {
        // A damaged entry is dropped with the rest.
      }
    }
    return n;
  }

  form.addEventListener("submit", (e) => {
    const keys = outboxKeys();
    const n = unsentCount(keys);
    if (n && !window.confirm(`${n} answer${n === 1 ? " is" : "s are"} not sent yet and will be lost. Log out anyway?`)) {
      e.preventDefault();
      return;
    }
    document.dispatchEvent(new Event("assay:logout")); // the annotate page stops saving first
    for (const key of keys) localStorage.removeItem(key);
  });
})();
