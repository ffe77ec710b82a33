// The project list page: create a project through the JSON API, then open it.
"use strict";

(() => {
  // With accounts on, changes made with the login session must carry its CSRF token.
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const CSRF = csrfMeta ? { "X-CSRF-Token": csrfMeta.content } : {};
  const form = document.getElementById("create-project");
  const status = document.getElementById("create-status");
  if (!form) return;

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = {
      name: f.get("name").trim(),
      labels: f.get("labels").split(",").map((s) => s.trim()).filter(Boolean),
      item_type: f.get("item_type"),
      strategy: f.get("strategy"),
      model: f.get("model").trim() || "logreg",
      batch_size: Number(f.get("batch_size")),
      retrain_every: Number(f.get("retrain_every")),
      multi_label: f.get("multi_label") === "on",
    };
    status.className = "status";
    status.textContent = "Creating…";
    try {
      const res = await fetch("/api/projects", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", ...CSRF },
        body: JSON.stringify(body),
      });
      const data = await res.json().catch(() => ({}));
      if (res.status === 201) {
        window.location.href = `/projects/${data.id}`;
        return;
      }
      status.className = "status error";
      status.textContent = data.error || `HTTP ${res.status}`;
    } catch (err) {
      status.className = "status error";
      status.textContent = `Network error: ${err.message}`;
    }
  });
})();
