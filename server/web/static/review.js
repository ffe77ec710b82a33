// The review page: a reviewer's click on a label records the item's final label.
"use strict";

(() => {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const CSRF = csrfMeta ? { "X-CSRF-Token": csrfMeta.content } : {};
  const list = document.getElementById("review-list");
  if (!list) return;
  const api = list.dataset.api;

  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-label]");
    if (!button) return;
    const article = button.closest(".review-item");
    const status = article.querySelector(".review-status");
    const body = { item_id: Number(article.dataset.item), label: button.dataset.label };
    status.textContent = "saving…";
    try {
      const res = await fetch(`${api}/reviews`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", ...CSRF },
        body: JSON.stringify(body),
      });
      const reply = await res.json();
      if (!res.ok) throw new Error(reply.error || res.statusText);
      article.querySelectorAll("button[data-label]").forEach((b) => b.classList.toggle("primary", b === button));
      status.textContent = `adjudicated: ${reply.label}`;
    } catch (err) {
      status.textContent = `not saved: ${err.message}`;
    }
  });
})();
