// Draws each chart of the page from its Vega-Lite spec with the vendored Vega builds.
// The spec and its data come from this Datasette; nothing else is fetched.
(function () {
  async function draw(el) {
    try {
      const spec = await (await fetch(el.dataset.spec)).json();
      const compiled = vegaLite.compile(spec).spec;
      const view = new vega.View(vega.parse(compiled), {renderer: "svg", container: el, hover: true});
      await view.runAsync();
      el.dataset.drawn = "1";
    } catch (err) {
      el.textContent = "This chart could not be drawn: " + err;
      el.dataset.drawn = "error";
    }
  }
  function drawAll() {
    document.querySelectorAll(".stemwatch-chart[data-spec]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
