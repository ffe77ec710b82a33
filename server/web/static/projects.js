// The project list page: create a project through the JSON API, then open it.
"use strict";

(() => {
  // With accounts on, changes made with the login session must carry its CSRF token.
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const CSRF = csrfMeta ? { "X-CSRF-Token": csrfMeta.content } : {};
  const form = document.getElementById("create-project");
  const status = document.getElementById("create-status");
  if (!form) return;
  // Each setting's kind and default, from ProjectSettings (server/domain/settings.py) via index.html,
  // so a default changed there needs no change here.
  const settings = JSON.parse(document.getElementById("project-settings").textContent);
  const read = {
    string: (value, fallback) => value.trim() || (fallback ?? ""),
    list: (value) => value.split(",").map((s) => s.trim()).filter(Boolean),
    integer: (value) => Number(value),
    number: (value) => Number(value),
    boolean: (value) => value === "on",  // a checkbox sends "on", or nothing when unticked
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = {};
    for (const [name, setting] of Object.entries(settings)) {
      if (!form.elements.namedItem(name)) continue;  // the form offers only some settings; the rest keep their defaults
      const convert = read[setting.kind] || ((value) => value);
      body[name] = convert(f.get(name), setting.default);
    }
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
