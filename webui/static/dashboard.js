// Dashboard: refresh the live figures every few seconds (polling a JSON endpoint).
"use strict";
(function () {
  const root = document.getElementById("dashboard");
  if (!root) { return; }
  const url = root.dataset.statusUrl;
  function set(scope, field, text) {
    const el = scope.querySelector("[data-field=" + field + "]");
    if (el) { el.textContent = text; }
  }
  function badge(scope, field, cls, text) {
    const el = scope.querySelector("[data-field=" + field + "]");
    if (!el) { return; }
    el.textContent = "";
    const b = document.createElement("span");
    b.className = "badge " + cls;
    b.textContent = text;
    el.appendChild(b);
  }
  function update(s) {
    document.getElementById("offline").hidden = !s.offline;
    set(document, "held", s.jobs.held);
    set(document, "fully", s.jobs.fully_replicated);
    set(document, "under", s.jobs.under_replicated);
    const states = document.getElementById("job-states");
    states.textContent = "";
    Object.entries(s.jobs.by_state || {}).forEach(([state, n]) => {
      if (state === "held") { return; }
      const b = document.createElement("span");
      b.className = "badge warn";
      b.textContent = n + " " + state;
      states.appendChild(b);
      states.appendChild(document.createTextNode(" "));
    });
    set(document, "live", s.members.filter((m) => m.live).length);
    set(document, "ready", s.printers.filter((p) => p.ready).length);
    s.members.forEach((m) => {
      const row = document.querySelector('[data-node="' + CSS.escape(m.id) + '"]');
      if (!row) { return; }
      if (m.live) { badge(row, "state", "ok", "up"); }
      else if (m.live === null) { badge(row, "state", "", "unknown"); }
      else { badge(row, "state", "bad", "down"); }
      set(row, "jobs", m.jobs === null ? "–" : m.jobs);
    });
    s.printers.forEach((p) => {
      const row = document.querySelector('[data-printer="' + CSS.escape(p.name) + '"]');
      if (!row) { return; }
      if (p.ready) { badge(row, "state", "ok", "ready"); }
      else if (p.ready === null || p.ready === undefined) { badge(row, "state", "", "status unknown"); }
      else { badge(row, "state", "bad", p.reason); }
      set(row, "alerts", (p.alerts || []).join(", "));
      if (p.checked_at) {
        const age = Math.max(0, Math.round(Date.now() / 1000 - p.checked_at));
        const said = age < 10 ? "just now" : age < 60 ? age + " s ago" : Math.floor(age / 60) + " min ago";
        set(row, "checked", "checked " + said);
      }
    });
    const list = document.getElementById("events");
    list.textContent = "";
    s.events.forEach((e) => {
      const li = document.createElement("li");
      const when = document.createElement("span");
      when.className = "muted";
      when.textContent = e.when;
      li.appendChild(when);
      li.appendChild(document.createTextNode(" — " + e.text));
      list.appendChild(li);
    });
  }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((s) => { if (s) { update(s); } })
      .catch(() => {})
      .finally(() => setTimeout(poll, 3000));
  }
  setTimeout(poll, 3000);
})();
