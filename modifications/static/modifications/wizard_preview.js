// The modification wizard's live schedule preview (a static file: the Content-Security-Policy
// allows no inline script).
(function () {
  // Live preview: re-render the schedule as the terms change (same-origin fetch, no CDN).
  // Without JavaScript the "Preview schedule" button does the same on the server.
  var form = document.getElementById("wizard-form");
  var box = document.getElementById("schedule-preview-container");
  if (!form || !box || !window.fetch) { return; }
  var timer = null;
  function refresh(event) {
    if (!event.target.name || event.target.name.indexOf("terms-") !== 0) { return; }
    clearTimeout(timer);
    timer = setTimeout(function () {
      var params = new URLSearchParams();
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && el.name.indexOf("terms-") === 0) { params.append(el.name, el.value); }
      });
      fetch(box.dataset.url + "?" + params.toString(), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { box.innerHTML = html; } });
    }, 300);
  }
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
})();
