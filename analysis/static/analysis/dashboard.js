// Draws the dashboard's plotly charts and refreshes them (and the table) while ratings come in.
(function () {
  "use strict";
  var root = document.getElementById("analysis-dashboard");
  if (!root || !window.Plotly) { return; }
  var slug = root.dataset.slug;
  var version = root.dataset.version;
  var config = {
    responsive: true,
    displaylogo: false,
    toImageButtonOptions: { format: "png", filename: slug },
    modeBarButtonsToAdd: [{
      name: "Download plot as SVG",
      icon: Plotly.Icons.disk,
      click: function (gd) {
        Plotly.downloadImage(gd, { format: "svg", filename: slug + "-" + gd.dataset.chart });
      },
    }],
  };

  function draw(figures) {
    Object.keys(figures).forEach(function (name) {
      var element = document.getElementById("chart-" + name);
      if (element) { Plotly.react(element, figures[name].data, figures[name].layout, config); }
    });
  }

  function refresh() {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        document.getElementById("updated").textContent = data.updated;
        if (data.version === version) { return; }
        version = data.version;
        document.getElementById("summary").innerHTML = data.table_html;
        draw(data.figures);
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }

  draw(JSON.parse(document.getElementById("analysis-figures").textContent));
  window.setInterval(refresh, 1000 * Number(root.dataset.refresh || 15));
})();
