"""Analyses of one or more fitted models, as a thesis reports them.

lrt (likelihood-ratio tests), variance (ICC, Nakagawa R², variance explained per level; latent,
a GLMM's level-1 variance on the latent scale),
contextual (within, between and contextual effects), simple_slopes (probing an interaction),
allfit (every optimizer on one model), power (simr's power by simulation, in chunks of
replicates), pbmodcomp (pbkrtest's parametric bootstrap LRT), checks (what the multi-model
analyses require), glmm_checks (a GLMM's binned residuals, zero-inflation check, simulated
scaled residuals and tests).
"""
