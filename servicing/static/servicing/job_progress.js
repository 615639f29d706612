// The Jobs page's progress bar: polls the job's progress view (a static file: the
// Content-Security-Policy allows no inline script).
(function () {
  const bar = document.getElementById("job-progress");
  const text = document.getElementById("job-progress-text");
  if (!bar || !text) { return; }
  const url = bar.dataset.url;
  function poll() {
    fetch(url, {credentials: "same-origin"}).then(r => r.json()).then(job => {
      bar.max = job.total || 1;
      bar.value = job.total ? job.done + job.failed : (job.status === "DONE" ? 1 : 0);
      text.textContent = `${job.status}: ${job.done + job.failed} / ${job.total} (${job.failed} failed)`;
      if (job.status === "QUEUED" || job.status === "RUNNING") setTimeout(poll, 2000);
      else if (job.failed) location.reload();
    });
  }
  if (bar.dataset.running === "true") setTimeout(poll, 2000);
})();
