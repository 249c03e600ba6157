"""Figures of a fitted model, deterministic SVG and PNG: diagnostics (sjPlot's panels A-D),
caterpillar (random effects with intervals), simple_slopes (predicted lines), glmm_diagnostics
(a GLMM's binned residuals and DHARMa-style scaled residuals), style (fonts, colours and the writer).
"""
