"""What every figure shares: fonts (a CJK font for Chinese labels), colours, and the
deterministic writer.

Figures use matplotlib's Agg backend and are deterministic: SVG with a fixed hash salt and no
date, PNG without metadata, so the same results give byte-identical files. Chinese labels
need a CJK font: the Noto Sans CJK collection that the `noto-cjk-sans-otc` package ships is
registered with matplotlib at run time; a system CJK font (fonts-noto-cjk, WenQuanYi, Droid
Sans Fallback, ...) is used when that package is missing.
"""
import logging
from pathlib import Path

from ..labels import labels
from ..results.writers import _atomic

log = logging.getLogger(__name__)




SYSTEM_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                       "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback",
                       "AR PL UMing CN", "Microsoft YaHei", "SimHei", "PingFang SC",
                       "Hiragino Sans GB", "Noto Sans CJK JP")


POINT_COLOR = "#3b6ea5"


LINE_COLOR = "#c0392b"


RASTERIZE_ABOVE = 2000   # scatter layers with more points are embedded as images in SVGs


_FONT = {}


def cjk_font():
    """The family name of a font with Chinese glyphs, registered with matplotlib, or None."""
    if "family" in _FONT:
        return _FONT["family"]
    from matplotlib import font_manager
    family = None
    try:
        import noto_cjk_sans_otc
        font_manager.fontManager.addfont(str(noto_cjk_sans_otc.FONT_PATH))
        names = {f.name for f in font_manager.fontManager.ttflist}
        family = "Noto Sans CJK SC" if "Noto Sans CJK SC" in names else None
    except (ImportError, OSError, RuntimeError) as exc:
        log.info("the bundled CJK font is not available (%s); looking for a system font", exc)
    if family is None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        family = next((name for name in SYSTEM_CJK_FAMILIES if name in names), None)
    if family is None:
        log.warning("no font with Chinese glyphs found: install hlm's dependencies "
                    "(pip install -e .) or a CJK font (apt-get install fonts-noto-cjk)")
    _FONT["family"] = family
    return family


def _style(language):
    """matplotlib rcParams of every figure: fonts with a CJK fallback, deterministic SVG, and no
    mathtext, so that a group label such as '$x$' (or one '$') is drawn as written."""
    family = cjk_font()
    fonts = ["DejaVu Sans"] + ([family] if family else [])
    if language == "zh" and family:
        fonts = [family, "DejaVu Sans"]
    return {"font.family": "sans-serif", "font.sans-serif": fonts, "axes.unicode_minus": False,
            "svg.hashsalt": "hlm", "svg.fonttype": "path", "font.size": 9,
            "axes.titlesize": 10, "axes.titleweight": "bold", "axes.spines.top": False,
            "axes.spines.right": False, "figure.dpi": 100, "text.parse_math": False}


def save_figure(fig, path):
    """Write a figure as SVG or PNG (by the path's suffix), atomically and deterministically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        kwargs = {"format": "svg", "metadata": {"Date": None, "Creator": None}}
    elif suffix == ".png":
        kwargs = {"format": "png", "dpi": 150, "metadata": {"Software": None}}
    else:
        raise ValueError(f"figure '{path}' must end in .svg or .png")
    _atomic(path, lambda tmp: fig.savefig(tmp, bbox_inches="tight", **kwargs))


def _render(language, draw, paths):
    """Draw a figure under the report's style and write it to every path."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    with matplotlib.rc_context(_style(language)):
        fig = draw(plt)
        try:
            for path in paths:
                save_figure(fig, path)
        finally:
            plt.close(fig)


def _labels(language):
    return labels(language)["diagnostics"]


def _paths(output):
    return [output] if isinstance(output, (str, Path)) else list(output)


def _scatter(ax, x, y, **kwargs):
    ax.scatter(x, y, s=4, alpha=0.45, color=POINT_COLOR, linewidths=0,
               rasterized=len(x) > RASTERIZE_ABOVE, **kwargs)
