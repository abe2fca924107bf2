// Live batch progress: polls the small JSON endpoint and redraws the counts and tables.
(function () {
  "use strict";
  const root = document.getElementById("batch");
  if (!root) return;
  const url = root.dataset.progressUrl;
  const POLL_MS = 2000;

  function setField(name, value) {
    const el = root.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = value;
  }

  function fillTable(id, rows, columns, emptyText) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    if (!rows.length && emptyText) {
      const tr = body.insertRow();
      const td = tr.insertCell();
      td.colSpan = columns.length;
      td.textContent = emptyText;
      return;
    }
    for (const row of rows) {
      const tr = body.insertRow();
      for (const key of columns) {
        const td = tr.insertCell();
        td.textContent = row[key];  // textContent: error messages are shown, never run
        if (key === "error") td.className = "error-text";
      }
    }
  }

  function draw(report) {
    for (const key of ["status", "done", "running", "queued", "failed", "cancelled", "total"]) {
      setField(key, report[key]);
    }
    setField("percent", report.percent.toFixed(1) + "%");
    setField("throughput", report.throughput_per_min);
    setField("eta", report.eta_seconds === null ? "–" : formatSeconds(report.eta_seconds));
    const bar = root.querySelector(".bar");
    bar.setAttribute("aria-valuenow", report.percent);
    root.querySelector(".bar-fill").style.width = report.percent + "%";
    const makeStudy = document.getElementById("make-study");
    if (makeStudy) makeStudy.hidden = !report.done;
    fillTable("variants", report.variants,
      ["name", "done", "running", "queued", "failed", "cancelled", "total", "throughput_per_min"]);
    fillTable("running", report.running_jobs,
      ["job", "variant", "prompt", "seed", "worker", "seconds"], "None.");
    fillTable("failures", report.failures,
      ["job", "variant", "prompt", "seed", "attempts", "status", "error"], "None.");
  }

  function formatSeconds(s) {
    if (s < 120) return s + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  async function poll() {
    let finished = false;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        const report = await response.json();
        draw(report);
        finished = report.queued + report.running === 0;
      }
    } catch (err) {
      // A missed poll (server restart, network blip) is retried on the next tick.
    }
    setTimeout(poll, finished ? POLL_MS * 5 : POLL_MS);
  }
  poll();
})();
