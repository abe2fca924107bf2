// Live study progress on the staff page: polls progress.json and redraws counts and pairs.
(function () {
  "use strict";
  const root = document.getElementById("study");
  if (!root) return;
  const url = root.dataset.progressUrl;
  const POLL_MS = 5000;

  function setField(name, value) {
    const el = root.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = value;
  }

  function draw(report) {
    for (const key of ["state", "judgments", "needed", "check_judgments", "comparisons", "gold",
      "raters_active", "raters"]) {
      setField(key, report[key]);
    }
    setField("percent", report.percent + "%");
    root.querySelector(".bar").setAttribute("aria-valuenow", report.percent);
    root.querySelector(".bar-fill").style.width = report.percent + "%";
    const body = document.querySelector("#pairs tbody");
    body.replaceChildren();
    for (const pair of report.pairs) {
      const tr = body.insertRow();
      for (const value of [pair.label, pair.comparisons, pair.judgments, pair.needed,
        pair.ci_width.toFixed(3)]) {
        tr.insertCell().textContent = value;  // textContent: names are shown, never run
      }
    }
  }

  async function poll() {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) draw(await response.json());
    } catch (err) {
      // A missed poll is retried on the next tick.
    }
    setTimeout(poll, POLL_MS);
  }
  setTimeout(poll, POLL_MS);
})();
