// jobsvc dashboard: confirmations for actions, and the throughput chart (uPlot), redrawn after
// every htmx poll. No inline script anywhere: the pages' Content-Security-Policy forbids it.
(function () {
  "use strict";

  // Every form with data-confirm asks before it submits (retry, cancel, and later actions).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  var chart = null;

  function drawChart() {
    var box = document.getElementById("throughput-chart");
    if (!box || typeof uPlot === "undefined") return;
    var series = JSON.parse(box.getAttribute("data-series"));
    var data = [series.minutes, series.done, series.failed];
    if (chart && chart.root.parentNode === box) {
      chart.setData(data);
      return;
    }
    if (chart) chart.destroy();
    box.textContent = "";
    chart = new uPlot({
      width: Math.max(320, box.clientWidth || 720),
      height: 220,
      scales: { x: { time: true } },
      axes: [{}, { label: "jobs / minute" }],
      series: [
        {},
        { label: "done", stroke: "#2e7d32", fill: "rgba(46,125,50,0.12)", width: 2 },
        { label: "failed", stroke: "#c62828", fill: "rgba(198,40,40,0.12)", width: 2 },
      ],
    }, data, box);
    box.setAttribute("data-drawn", "1");
  }

  document.addEventListener("DOMContentLoaded", drawChart);
  document.addEventListener("htmx:afterSwap", drawChart);
})();
