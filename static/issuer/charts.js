/* The back office's charts: Chart.js (static/vendor/chart.js-4.6.2) draws each <canvas data-chart-source="ID"> from
 * the JSON the page holds in <script type="application/json" id="ID"> (Django's json_script). Nothing inline: Chart.js
 * injects no stylesheet and sizes its canvas through element.style (CSSOM), which `style-src 'self'` allows.
 * Colours follow Django admin's light and dark themes (its CSS variables), and the charts are redrawn when the theme
 * changes. Labels are 13 px (12 px on a phone), every point is drawn even when it is the only one. */
(function () {
  "use strict";

  var charts = [];
  var DAY = 86400000;

  function dark() {
    var theme = document.documentElement.dataset.theme;
    if (theme === "dark") return true;
    if (theme === "light") return false;
    return window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  function palette() {
    var css = getComputedStyle(document.documentElement);
    var read = function (name, fallback) { return css.getPropertyValue(name).trim() || fallback; };
    var isDark = dark();
    return {
      text: read("--body-fg", isDark ? "#eeeeee" : "#333333"),
      quiet: read("--body-quiet-color", isDark ? "#d0d0d0" : "#666666"),
      grid: isDark ? "rgba(255, 255, 255, 0.14)" : "rgba(0, 0, 0, 0.1)",
      series: read("--link-fg", isDark ? "#81d4fa" : "#417690"),
      background: read("--body-bg", isDark ? "#121212" : "#ffffff"),
      signing: isDark ? "#5fd47a" : "#0a7b24",
      pending: isDark ? "#f0b45a" : "#8a5a00",
      retired: isDark ? "#9e9e9e" : "#999999",
      revoked: isDark ? "#ff7b72" : "#ba2121",
    };
  }

  function fade(hex, alpha) {
    var value = parseInt(hex.replace("#", ""), 16);
    return "rgba(" + (value >> 16) + ", " + ((value >> 8) & 255) + ", " + (value & 255) + ", " + alpha + ")";
  }

  function fontSize() { return window.innerWidth < 600 ? 12 : 13; }

  function utc(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }

  function axis(colours, title, extra) {
    var font = { size: fontSize() };
    return Object.assign({
      ticks: { color: colours.quiet, font: font, maxRotation: 0, autoSkipPadding: 8 },
      grid: { color: colours.grid },
      border: { color: colours.grid },
      title: { display: Boolean(title), text: title, color: colours.quiet, font: font },
    }, extra || {});
  }

  function seriesChart(data, colours) {
    var single = data.labels.length === 1;
    var datasets = data.series.map(function (series, index) {
      return {
        label: series.name,
        data: series.values,
        backgroundColor: series.outlined ? "transparent" : colours.series,
        borderColor: colours.series,
        borderWidth: series.outlined || data.kind === "line" ? 2 : 0,
        borderDash: series.outlined && data.kind === "line" ? [6, 4] : [],
        pointRadius: data.kind === "line" ? (single ? 6 : 3) : 0,
        pointStyle: index ? "rectRot" : "circle",
        pointBackgroundColor: series.outlined ? colours.background : colours.series,
        maxBarThickness: 48,
      };
    });
    return {
      type: data.kind,
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: {
            display: datasets.length > 1,
            labels: { color: colours.text, font: { size: fontSize() }, usePointStyle: data.kind === "line", boxHeight: 10 },
          },
          tooltip: { titleFont: { size: fontSize() }, bodyFont: { size: fontSize() } },
        },
        scales: {
          x: axis(colours, data.xTitle, { grid: { display: false }, offset: true }),
          y: axis(colours, data.yTitle, { beginAtZero: true, suggestedMax: 1, grace: "5%", ticks: { color: colours.quiet, font: { size: fontSize() }, precision: 0 } }),
        },
      },
    };
  }

  var MARKER = { due: "rectRot", "has-key": "circle", "lacks-key": "crossRot" };

  function nowLine(data, colours) {
    return {
      id: "nowLine",
      afterDatasetsDraw: function (chart) {
        var x = chart.scales.x.getPixelForValue(data.now);
        var area = chart.chartArea;
        var context = chart.ctx;
        context.save();
        context.strokeStyle = colours.revoked;
        context.lineWidth = 2;
        context.beginPath();
        context.moveTo(x, area.top);
        context.lineTo(x, area.bottom);
        context.stroke();
        context.fillStyle = colours.revoked;
        context.font = "bold " + fontSize() + "px sans-serif";
        context.fillText("now", x + 4, area.top + fontSize());
        context.restore();
      },
    };
  }

  function timelineChart(data, colours) {
    var phases = [
      ["published", "published, not signing", colours.pending, 0.35],
      ["signing", "signing", colours.signing, 1],
      ["retired", "retired, still published", colours.retired, 0.6],
      ["revoked", "revoked", colours.revoked, 1],
    ];
    var datasets = phases.map(function (phase) {
      return {
        type: "bar",
        label: phase[1],
        grouped: false,
        data: data.bars.filter(function (bar) { return bar.phase === phase[0]; })
          .map(function (bar) { return { x: [bar.start, bar.end], y: bar.lane }; }),
        backgroundColor: phase[3] < 1 ? fade(phase[2], phase[3]) : phase[2],
        borderColor: phase[2],
        borderWidth: 1,
        barPercentage: 0.6,
        categoryPercentage: 1,
        minBarLength: 3,
        pointStyle: "rect",
      };
    }).filter(function (dataset) { return dataset.data.length; });
    Object.keys(MARKER).forEach(function (shape) {
      var points = data.markers.filter(function (marker) { return marker.shape === shape; });
      if (!points.length) return;
      datasets.push({
        type: "scatter",
        label: { due: "policy action due", "has-key": "validator has the key", "lacks-key": "validator lacks it" }[shape],
        data: points.map(function (marker) { return { x: marker.at, y: marker.lane, note: marker.label }; }),
        pointStyle: MARKER[shape],
        pointRadius: 7,
        pointHoverRadius: 9,
        borderWidth: 2,
        backgroundColor: shape === "lacks-key" ? colours.revoked : shape === "has-key" ? colours.signing : colours.text,
        borderColor: shape === "lacks-key" ? colours.revoked : shape === "has-key" ? colours.signing : colours.text,
      });
    });
    var span = Math.max(data.end - data.start, DAY);
    var step = Math.max(1, Math.round(span / DAY / (window.innerWidth < 600 ? 4 : 8))) * DAY;
    return {
      type: "bar",
      data: { labels: data.lanes, datasets: datasets },
      options: {
        indexAxis: "y",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { labels: { color: colours.text, font: { size: fontSize() }, usePointStyle: true, boxHeight: 10 } },
          tooltip: {
            titleFont: { size: fontSize() },
            bodyFont: { size: fontSize() },
            callbacks: {
              label: function (item) {
                if (item.raw.note) return item.raw.note;
                return item.dataset.label + ": " + utc(item.raw.x[0]) + " → " + utc(item.raw.x[1]);
              },
            },
          },
        },
        scales: {
          x: axis(colours, "UTC", {
            type: "linear",
            min: data.start,
            max: data.end,
            ticks: {
              color: colours.quiet,
              font: { size: fontSize() },
              stepSize: step,
              maxRotation: 0,
              callback: function (value) { return new Date(value).toISOString().slice(5, 10); },
            },
          }),
          y: axis(colours, "", { type: "category", ticks: { color: colours.text, font: { size: fontSize(), family: "monospace" } } }),
        },
      },
      plugins: [nowLine(data, colours)],
    };
  }

  function draw() {
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    var colours = palette();
    document.querySelectorAll("canvas[data-chart-source]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chartSource);
      if (!source) return;
      var data = JSON.parse(source.textContent);
      if (data.kind === "timeline") canvas.parentNode.style.height = (110 + 40 * Math.max(data.lanes.length, 1)) + "px";
      var config = data.kind === "timeline" ? timelineChart(data, colours) : seriesChart(data, colours);
      charts.push(new Chart(canvas, config));
    });
  }

  function start() {
    if (typeof Chart === "undefined") return; // the tables still hold every value
    draw();
    new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
    var width = window.innerWidth;
    window.addEventListener("resize", function () {
      if ((width < 600) !== (window.innerWidth < 600)) draw(); // the font size changes at that width
      width = window.innerWidth;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}());
