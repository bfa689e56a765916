"""Altair charts in Jupyter without internet: NanoG1 ships Vega, Vega-Lite and vega-embed.

Altair's default Jupyter renderer loads the Vega JavaScript from a CDN (cdn.jsdelivr.net) each time a chart
is shown, so on a machine without internet (a hospital cluster) every chart stays empty. Altair's own
offline modes need `vl-convert-python` (a wheel of tens of MB with its own JavaScript engine).
`enable_offline_charts()` instead shows the three libraries once, inline, in the output of the cell that
calls it (about 830 kB, as Plotly's offline notebook mode does with plotly.js), and switches Altair to a
renderer whose outputs hold only the chart's spec and draw it with those libraries: nothing is fetched,
online or offline, and a notebook saved or exported to HTML with its outputs draws its charts anywhere.

The libraries are the npm packages' UMD builds in `nanog1/dashboard/vega/` (versions and checksums in its
README.md; BSD-3-Clause, licences beside them). Jupyter runs an output's scripts only in a trusted
notebook, as for Altair's default renderer.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

#: The vendored builds, in load order (Vega-Lite needs Vega; vega-embed needs both).
VEGA_DIR = Path(__file__).with_name("vega")
LIBRARIES = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
#: The Altair renderer's name (`alt.renderers.enable(RENDERER)`).
RENDERER = "nanog1-offline"
#: How long a chart's output waits for the libraries' output to run (a front end may draw it later).
WAIT_MS = 30_000

_CHART = """<div id="{div}" class="nanog1-chart"></div>
<script type="text/javascript">
(function (spec, embedOpt) {{
  var el = document.getElementById("{div}"), waited = 0;
  function draw() {{
    window.vegaEmbed(el, spec, embedOpt).catch(function (err) {{
      el.textContent = "Chart error: " + err;
    }});
  }}
  (function wait() {{
    if (window.vegaEmbed) return draw();
    if ((waited += 100) > {wait_ms}) {{
      el.textContent = "Chart not drawn: the Vega libraries are not loaded. Run "
        + "nanog1.dashboard.enable_offline_charts() in this notebook (its output holds them).";
      return;
    }}
    setTimeout(wait, 100);
  }})();
}})({spec}, {embed});
</script>"""


def library_script() -> str:
    """One <script> element defining window.vega, window.vegaLite and window.vegaEmbed from the vendored
    builds. They are UMD builds: an AMD loader on the page (classic Notebook's require.js) would take them
    over and leave no globals, so `define`, `module` and `exports` are hidden from them."""
    code = []
    for name in LIBRARIES:
        text = (VEGA_DIR / name).read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if not line.startswith("//# sourceMappingURL=")]
        code.append("\n".join(lines).replace("</script", "<\\/script"))
    body = ";\n".join(code)
    return ('<script type="text/javascript">\n(function (define, module, exports) {\n'
            f"{body}\n}}).call(window);\n</script>")


def _script_json(value) -> str:
    """JSON to paste into a <script> element: a '</' in a string (a title) would end the element early."""
    return json.dumps(value).replace("</", "<\\/")


def render(spec: dict, **metadata) -> dict[str, str]:
    """Altair renderer: the chart's spec in an HTML output that draws it with the libraries of
    `enable_offline_charts()` (waiting up to WAIT_MS for them), loading nothing from the internet."""
    embed = {"mode": "vega-lite", **(metadata.get("embed_options") or {})}
    html = _CHART.format(div=f"nanog1-chart-{uuid.uuid4().hex}", spec=_script_json(spec),
                         embed=_script_json(embed), wait_ms=WAIT_MS)
    return {"text/html": html}


def enable_offline_charts() -> None:
    """Draw this notebook's Altair charts without internet: show the Vega libraries once in this cell's
    output and make `render` Altair's renderer. Call it after the imports, before the first chart; calling
    it again (a re-run cell, a restarted kernel) shows them again, harmlessly."""
    import altair as alt
    from IPython.display import HTML, display

    if RENDERER not in alt.renderers.names():
        alt.renderers.register(RENDERER, render)
    alt.renderers.enable(RENDERER)
    display(HTML(library_script()))
