# lme4 side of benchmarks/run.py (adapted from tests/fixtures/r/time_lme4.R).
#   Rscript benchmarks/lme4_time.R DATA.csv "FORMULA" REML OPTIMIZER [MODE] [BUDGET_SECONDS] [MIN_REPEATS] [MAX_REPEATS]
# REML: TRUE/FALSE. OPTIMIZER: "bobyqa", "nloptwrap", ... or "default" (lmerControl() as shipped).
# Grouping columns (every variable right of a `|`) and character columns are made factors.
# MODE "time" (default): lmer() on the data.frame already in memory, as hlm's side does:
#   first    elapsed seconds of the first fit in this process;
#   seconds  best elapsed of `repeats` further fits, repeated until they took BUDGET seconds
#            (at least MIN, at most MAX repeats; one model alive at a time).
# MODE "memory" (Linux /proc/self/status): a tiny warm-up fit (sleepstudy), the data loaded, gc();
#   rss_loaded_mb = VmRSS then; the high-water mark is reset (/proc/self/clear_refs) and one fit run;
#   fit_peak_mb = VmHWM over that fit; total_peak_mb = VmHWM of the whole process.
# Prints one JSON line.
suppressMessages({library(lme4); library(jsonlite)})
a <- commandArgs(TRUE)
if (length(a) < 4) stop("usage: Rscript lme4_time.R DATA.csv FORMULA REML OPTIMIZER [MODE] [BUDGET] [MIN] [MAX]")
num <- function(i, default) if (length(a) >= i) as.numeric(a[i]) else default
mode <- if (length(a) >= 5) a[5] else "time"
budget <- num(6, 5); min_n <- num(7, 2); max_n <- num(8, 50)
f <- as.formula(a[2])
REML <- toupper(a[3]) %in% c("TRUE", "T", "1")
optimizer <- a[4]
control <- if (optimizer == "default") lmerControl() else lmerControl(optimizer = optimizer)

status_mb <- function(field) {
  s <- tryCatch(readLines("/proc/self/status"), error = function(e) character())
  l <- grep(paste0("^", field, ":"), s, value = TRUE)
  if (length(l)) as.numeric(gsub("[^0-9]", "", l)) / 1024 else NA_real_
}
reset_peak <- function() tryCatch({ cat("5", file = "/proc/self/clear_refs"); TRUE }, error = function(e) FALSE)
fit <- function(d) {
  t0 <- proc.time()[["elapsed"]]
  m <- suppressMessages(lmer(f, data = d, REML = REML, control = control))
  list(model = m, seconds = proc.time()[["elapsed"]] - t0)
}
load_data <- function() {
  d <- read.csv(a[1])
  grp <- unique(unlist(lapply(lme4::findbars(f), function(b) all.vars(b[[3]]))))
  for (v in names(d)) if (is.character(d[[v]]) || v %in% grp) d[[v]] <- factor(d[[v]])
  d
}
emit <- function(...) cat(toJSON(list(..., requested = optimizer, nobs = nobs(m), REML = REML, formula = a[2],
                                      lme4 = as.character(packageVersion("lme4")), R = R.version.string),
                                 auto_unbox = TRUE, digits = NA), "\n", sep = "")

if (mode == "memory") {
  invisible(suppressMessages(lmer(Reaction ~ Days + (Days | Subject), sleepstudy, control = control)))
  d <- load_data()
  invisible(gc())
  rss_loaded <- status_mb("VmRSS")
  peak_before <- status_mb("VmHWM")
  reset <- reset_peak()
  m <- fit(d)$model
  fit_peak <- status_mb("VmHWM")
  emit(optimizer = m@optinfo$optimizer, logLik = as.numeric(logLik(m)), rss_loaded_mb = rss_loaded,
       fit_peak_mb = if (reset) fit_peak else NA_real_, total_peak_mb = max(peak_before, fit_peak))
} else {
  d <- load_data()
  first <- fit(d)
  first_seconds <- first$seconds
  rm(first); invisible(gc())
  secs <- numeric()
  while (length(secs) < max_n && (length(secs) < min_n || sum(secs) < budget)) {
    if (exists("m")) { rm(m); invisible(gc()) }
    r <- fit(d); secs <- c(secs, r$seconds)
    m <- r$model; rm(r)
  }
  emit(optimizer = m@optinfo$optimizer, first = first_seconds, seconds = min(secs), repeats = length(secs),
       median = median(secs), logLik = as.numeric(logLik(m)), evaluations = m@optinfo$feval)
}
