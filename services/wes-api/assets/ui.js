// The web UI's one script (served from the binary; docs/ui.md). It keeps run states live
// without reloading: an element with `data-poll` names the JSON to read (the WES API's own
// `GET /runs` or `/runs/{id}/status`, authenticated by the session cookie); every element with
// `data-run-id` inside it (or itself) shows that run's state. Polling stops once every shown
// run has ended, and pauses while the tab is hidden. An element with `data-fill-from` is
// replaced by the element of the same id on that page once it has loaded (work too slow for
// the page itself, such as verifying the whole audit chain); without the script its link
// opens that page.
"use strict";
(function () {
  var ENDED = ["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"];
  var PERIOD_MS = 3000;

  function show(el, state) {
    if (el.textContent === state) return;
    el.textContent = state;
    el.className = "state state-" + state.toLowerCase();
  }

  function statesOf(body) {
    var out = {};
    if (body && Array.isArray(body.runs)) {
      body.runs.forEach(function (r) { out[r.run_id] = r.state; });
    } else if (body && body.run_id) {
      out[body.run_id] = body.state;
    }
    return out;
  }

  function watch(root) {
    var url = root.getAttribute("data-poll");
    var stopped = false;
    var cells = root.hasAttribute("data-run-id") ? [root] : Array.prototype.slice.call(root.querySelectorAll("[data-run-id]"));
    function live() {
      return cells.some(function (c) { return ENDED.indexOf(c.textContent.trim()) < 0; });
    }
    function tick() {
      if (!live()) return;
      if (document.hidden) { setTimeout(tick, PERIOD_MS); return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (res) {
          // The session has ended (or the run is gone): stop; the next page load says why.
          if (res.status === 401 || res.status === 404) { stopped = true; return null; }
          return res.ok ? res.json() : null;
        })
        .then(function (body) {
          var states = statesOf(body);
          cells.forEach(function (c) {
            var s = states[c.getAttribute("data-run-id")];
            if (s) show(c, s);
          });
          if (!live()) ended();
        })
        .catch(function () { /* a missed poll is retried at the next tick */ })
        .then(function () { if (!stopped) setTimeout(tick, PERIOD_MS); });
    }
    setTimeout(tick, PERIOD_MS);
  }

  // On a run's page: once it has ended, the cancel form goes and a notice offers the outputs.
  function ended() {
    var form = document.getElementById("cancel-form");
    if (form) form.remove();
    var notice = document.getElementById("ended-notice");
    if (notice) notice.hidden = false;
  }

  function fill(el) {
    fetch(el.getAttribute("data-fill-from"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { return res.text(); })
      .then(function (html) {
        var found = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
        if (found) el.replaceWith(document.importNode(found, true));
      })
      .catch(function () { /* the link stays */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-poll]"), watch);
    Array.prototype.forEach.call(document.querySelectorAll("[data-fill-from][id]"), fill);
  });
})();
