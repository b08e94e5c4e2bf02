// Live progress of a bulk replay job: reads the job's JSON every 2 s and updates the
// numbers on the page (the page works without it: its "Refresh" link).
"use strict";
(function () {
  const panel = document.getElementById("progress");
  if (!panel) return;
  const bar = document.getElementById("bar");
  const labels = {sending: "sender / sending", sent: "sendt, venter på svar / sent, waiting for answers",
                  answered: "ferdig / finished"};
  async function tick() {
    let job;
    try {
      const response = await fetch(panel.dataset.url, {headers: {accept: "application/json"}, credentials: "same-origin"});
      if (!response.ok) return setTimeout(tick, 5000);
      job = await response.json();
    } catch (e) {
      return setTimeout(tick, 5000);
    }
    for (const field of ["total", "sent", "done", "skipped", "refused", "waiting"]) {
      const el = panel.querySelector('[data-field="' + field + '"]');
      if (el && el.textContent !== String(job[field])) el.textContent = String(job[field]);
    }
    const label = panel.querySelector('[data-field="state_label"]');
    if (label) label.textContent = labels[job.state] || job.state;
    if (bar) {
      const answered = job.done + job.skipped + job.refused;
      bar.value = answered;
      bar.textContent = answered + " / " + job.total;
    }
    if (job.state !== "answered") setTimeout(tick, 2000);
  }
  setTimeout(tick, 2000);
})();
