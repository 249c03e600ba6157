# lme4 side of benchmarks/glmm.py: glmer() fits timed on a data.frame already in memory.
#   Rscript benchmarks/glmm_time.R DATA.csv "FORMULA" FAMILY NAGQ FACTORS [BUDGET_SECONDS] [MIN_REPEATS] [MAX_REPEATS]
# FACTORS: comma-separated columns read as factors (as tests/fixtures/glmm_lme4.json lists them).
# glmerControl() defaults (bobyqa, then Nelder_Mead). Prints one JSON line: first (the first fit),
# seconds (best of `repeats` further fits, repeated until they took BUDGET seconds), logLik, nobs.
suppressMessages({library(lme4); library(jsonlite)})
a <- commandArgs(TRUE)
num <- function(i, default) if (length(a) >= i) as.numeric(a[i]) else default
budget <- num(6, 3); min_n <- num(7, 2); max_n <- num(8, 20)
d <- read.csv(a[1])
for (v in strsplit(a[5], ",")[[1]]) d[[v]] <- factor(d[[v]])
f <- as.formula(a[2])
fit <- function() {
  t0 <- proc.time()[["elapsed"]]
  m <- suppressWarnings(suppressMessages(glmer(f, data = d, family = a[3], nAGQ = as.integer(a[4]))))
  list(model = m, seconds = proc.time()[["elapsed"]] - t0)
}
first <- fit()
times <- c(); spent <- 0
while ((length(times) < min_n || spent < budget) && length(times) < max_n) {
  r <- fit(); times <- c(times, r$seconds); spent <- spent + r$seconds
}
cat(toJSON(list(first = first$seconds, seconds = min(times), repeats = length(times),
                logLik = as.numeric(logLik(r$model)), nobs = nobs(r$model), lme4 = as.character(packageVersion("lme4"))),
           auto_unbox = TRUE, digits = NA), "\n")
