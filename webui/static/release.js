// Release page: follow each release to "printed" (or a clear failure) by polling its JSON.
"use strict";
(function () {
  const FINAL = ["printed", "failed", "unknown"];
  const LABELS = { claiming: "starting", delivering: "sending", queued: "waiting for the printer",
    printing: "printing",
    printed: "printed", failed: "failed", unknown: "may have printed — check the printer" };
  function show(item, data) {
    const stage = item.querySelector("[data-field=stage]");
    const reason = item.querySelector("[data-field=reason]");
    stage.textContent = "";
    if (!FINAL.includes(data.stage)) {
      const spin = document.createElement("span");
      spin.className = "spinner";
      stage.appendChild(spin);
      stage.appendChild(document.createTextNode(" "));
    }
    stage.appendChild(document.createTextNode(LABELS[data.stage] || data.stage));
    stage.className = "badge" + (data.stage === "printed" ? " ok" : FINAL.includes(data.stage) ? " bad" : "");
    reason.textContent = data.stage === "printed" ? "Collect it from the printer." : (data.reason || "");
    item.dataset.stage = data.stage;
  }
  function poll(item) {
    fetch(item.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => r.json())
      .then((data) => {
        if (data.error) { data = { stage: item.dataset.stage || "queued", reason: data.error }; }
        show(item, data);
        if (!FINAL.includes(data.stage)) { setTimeout(() => poll(item), 1000); }
      })
      .catch(() => setTimeout(() => poll(item), 2000));
  }
  document.querySelectorAll("[data-release]").forEach(poll);
})();
