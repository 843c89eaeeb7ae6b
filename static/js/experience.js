// Progressive enhancement for the experience pages (import progress; they work without it).
(function () {
  "use strict";

  function pollImportProgress(section) {
    var url = section.getAttribute("data-import-progress");
    var bar = section.querySelector("progress");
    function update(state) {
      bar.value = state.percent;
      bar.textContent = state.percent + "%";
      section.querySelectorAll("[data-field]").forEach(function (node) {
        var key = node.getAttribute("data-field");
        if (key in state) node.textContent = state[key];
        if (key === "error") node.hidden = !state.error;
      });
      var finished = section.querySelector("[data-when-finished]");
      if (finished) finished.hidden = !state.finished;
      return state.finished;
    }
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (state) { if (!update(state)) window.setTimeout(tick, 1000); })
        .catch(function () { window.setTimeout(tick, 3000); });
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-import-progress]").forEach(pollImportProgress);
  });
})();
