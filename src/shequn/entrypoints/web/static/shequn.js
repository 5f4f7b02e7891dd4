// Small helpers for the console and the portal: confirmation before destructive actions,
// progress while long work runs, and charts drawn by plotly.js (served by the app itself).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var working = form.getAttribute("data-progress");
    if (working) {
      var bar = form.querySelector("progress.working");
      if (bar) bar.hidden = false;
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.disabled = true;
        b.textContent = working;
      });
    }
  });
  function drawCharts() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var figure = JSON.parse(el.getAttribute("data-figure"));
      window.Plotly.newPlot(el, figure.data, figure.layout, {
        displaylogo: false,
        responsive: true,
        modeBarButtonsToRemove: ["sendDataToCloud"],
      });
    });
  }
  window.addEventListener("load", drawCharts);
})();
