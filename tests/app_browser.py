"""Playwright helpers shared by the browser tests and the benchmark: Debian's headless Chromium and the
dashboard's Plotly map."""

from __future__ import annotations

from pathlib import Path

#: Debian's chromium (`apt-get install -y chromium`), started headless by playwright.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

#: The Embeddings page's map (Plotly's graph div).
MAP = "[data-testid='stPlotlyChart'] .js-plotly-plot"

#: Every point of the map in page pixels: (sample, trace name, x, y) of the traces shown.
MAP_POINTS = """g => {
  const box = g.getBoundingClientRect(), xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis, out = [];
  g._fullData.forEach(t => { if (t.visible !== true || !t.customdata) return;
    for (let i = 0; i < t.x.length; i++) out.push([t.customdata[i][0], t.name,
      box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i])]); });
  return out; }"""


def draw_lasso(page, plot, left: float, right: float) -> dict:
    """Take the mode bar's lasso tool and draw a rectangle from `left` to `right` (fractions of the plot's
    width), full height less 10 px at each edge (the corners of a Plotly plot zoom the axes instead).
    Returns the lasso's rectangle in page pixels; a later lasso must reach further right than an earlier."""
    plot.scroll_into_view_if_needed()  # mouse events off screen reach nothing
    plot.locator(".modebar-btn[data-val='lasso']").click()
    area = plot.locator(".nsewdrag").first.bounding_box()
    width = area["width"]
    x0, x1 = area["x"] + max(left * width, 10), area["x"] + min(right * width, width - 10)
    y0, y1 = area["y"] + 10, area["y"] + area["height"] - 10
    page.mouse.move(x1, y0)  # from the right: a drag that starts inside an earlier lasso moves that one
    page.mouse.down()
    for x, y in ((x1, y1), (x0, y1), (x0, y0), (x1, y0)):
        page.mouse.move(x, y, steps=6)
    page.mouse.up()
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}
