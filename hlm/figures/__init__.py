"""Figures of a fitted model, deterministic SVG and PNG: diagnostics (sjPlot's panels A-D),
caterpillar (random effects with intervals), simple_slopes (predicted lines), style (fonts,
colours and the writer).
"""
