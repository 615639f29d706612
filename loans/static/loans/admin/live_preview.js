// Live schedule preview for the admin's forms (served from static files: no inline script,
// no CDN). A form with data-live-preview="<container id>" sends its fields (those starting
// with the container's data-prefix, if it has one) to the container's data-url as the operator
// types, and shows the HTML fragment the server returns. Without JavaScript the form still
// works: the server renders the preview on submit.
(function () {
  "use strict";
  function wire(form) {
    var box = document.getElementById(form.dataset.livePreview);
    if (!box || !box.dataset.url || !window.fetch) { return; }
    var prefix = box.dataset.prefix || "";
    var timer = null;
    var sent = 0;
    function params() {
      var out = new URLSearchParams();
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.name === "csrfmiddlewaretoken" || el.type === "submit") { return; }
        if (prefix && el.name.indexOf(prefix) !== 0) { return; }
        if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
        out.append(el.name, el.value);
      });
      return out;
    }
    function refresh(event) {
      if (prefix && (!event.target.name || event.target.name.indexOf(prefix) !== 0)) { return; }
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++sent;
        box.setAttribute("aria-busy", "true");
        fetch(box.dataset.url + "?" + params().toString(), {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html !== null && mine === sent) { box.innerHTML = html; }
            box.removeAttribute("aria-busy");
          });
      }, 300);
    }
    form.addEventListener("input", refresh);
    form.addEventListener("change", refresh);
  }
  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-live-preview]"), wire);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
