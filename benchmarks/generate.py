"""Seeded synthetic data for the benchmarks, cached under benchmarks/data/ (never committed).

    python benchmarks/generate.py              # writes every benchmark data set
    python benchmarks/generate.py --rows 1000000 --groups 10000 --seed 1

two_level: students-in-schools data with a random intercept and slope and a cross-level
interaction,

    y = γ00 + γ10·x + γ01·w + γ11·x·w + u0j + u1j·x + r,

x a level-1 predictor, w a level-2 predictor, (u0j, u1j) bivariate normal, r normal.

crossed_insteval_like: the size and shape of lme4's InstEval (73,421 ratings; 2972
students s, 1128 lecturers d, 14 departments dept), each lecturer belonging to one
department as in InstEval, y = μ + s + d + dept + e.
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"

# Fixed effects and variance components of two_level (HSB-like magnitudes).
GAMMA = {"intercept": 12.0, "x": 2.0, "w": 1.0, "x:w": 0.5}
TAU = np.array([[4.0, 0.3], [0.3, 0.25]])      # Var(u0j), Cov(u0j, u1j), Var(u1j)
SIGMA = 6.0

# InstEval's shape and lme4's REML estimates for y ~ 1 + (1|s) + (1|d) + (1|dept).
INSTEVAL = {"rows": 73421, "s": 2972, "d": 1128, "dept": 14,
            "mean": 3.2, "sd_s": 0.32, "sd_d": 0.52, "sd_dept": 0.08, "sd_e": 1.18}


def two_level(n_rows, n_groups, seed):
    """A DataFrame with columns g (group id), x (level 1), w (level 2) and y."""
    rng = np.random.default_rng(seed)
    g = np.sort(rng.integers(0, n_groups, n_rows))
    w = rng.normal(0.0, 1.0, n_groups)
    u = rng.multivariate_normal([0.0, 0.0], TAU, size=n_groups)
    x = rng.normal(0.0, 1.0, n_rows)
    wi = w[g]
    y = (GAMMA["intercept"] + GAMMA["x"] * x + GAMMA["w"] * wi + GAMMA["x:w"] * x * wi
         + u[g, 0] + u[g, 1] * x + rng.normal(0.0, SIGMA, n_rows))
    return pd.DataFrame({"g": g.astype(np.int64), "x": x, "w": wi, "y": y})


def crossed_insteval_like(seed):
    """A DataFrame with factors s, d, dept (d nested in dept) and a response y.

    Shaped like InstEval's rating pattern (which decides the fill-in of lme4's sparse Cholesky):
    each lecturer d belongs to one department; students and lecturers differ in activity
    (InstEval: 1-92 ratings per student, 10-792 per lecturer); each student has a home department
    that gets about 60% of their ratings (InstEval: 58% in a student's most rated department).
    """
    p = INSTEVAL
    rng = np.random.default_rng(seed)
    n, n_s, n_d, n_dept = p["rows"], p["s"], p["d"], p["dept"]
    dept_of_d = np.concatenate([np.arange(n_dept), rng.integers(0, n_dept, n_d - n_dept)])
    rng.shuffle(dept_of_d)
    popularity = rng.lognormal(0.0, 1.0, n_d)
    activity = rng.gamma(2.0, 1.0, n_s)
    home = dept_of_d[rng.choice(n_d, n_s, p=popularity / popularity.sum())]
    # Every student and lecturer rated at least once; the other rows drawn by activity/popularity.
    s = np.concatenate([np.arange(n_s), rng.choice(n_s, n - n_s, p=activity / activity.sum())])
    rng.shuffle(s)
    d = np.empty(n, dtype=np.int64)
    d[:n_d] = rng.permutation(n_d)
    anywhere = rng.choice(n_d, n, p=popularity / popularity.sum())
    at_home = rng.random(n) < 0.6
    for k in range(n_dept):                   # lecturers of the student's home department
        members = np.flatnonzero(dept_of_d == k)
        rows = np.flatnonzero(at_home & (home[s] == k))
        weights = popularity[members] / popularity[members].sum()
        anywhere[rows] = members[rng.choice(len(members), len(rows), p=weights)]
    d[n_d:] = anywhere[n_d:]
    dept = dept_of_d[d]
    y = (p["mean"] + rng.normal(0, p["sd_s"], n_s)[s] + rng.normal(0, p["sd_d"], n_d)[d]
         + rng.normal(0, p["sd_dept"], n_dept)[dept] + rng.normal(0, p["sd_e"], n))
    # Level names as strings, so both hlm and R treat them as factors.
    return pd.DataFrame({"s": np.char.add("s", s.astype(str)), "d": np.char.add("d", d.astype(str)),
                         "dept": np.char.add("dept", dept.astype(str)), "y": y})


def cached(name, make, data_dir=DATA_DIR):
    """Paths (parquet, csv) of a data set, generating it on first use."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    parquet, csv = data_dir / f"{name}.parquet", data_dir / f"{name}.csv"
    if not (parquet.exists() and csv.exists()):
        frame = make()
        _atomic(parquet, lambda tmp: frame.to_parquet(tmp, index=False))
        _atomic(csv, lambda tmp: frame.to_csv(tmp, index=False))
    return parquet, csv


def _atomic(path, write):
    tmp = path.with_suffix(path.suffix + ".tmp")
    write(tmp)
    tmp.replace(path)


def two_level_paths(n_rows, n_groups=10_000, seed=1):
    return cached(f"two_level_{n_rows}_{n_groups}_seed{seed}", lambda: two_level(n_rows, n_groups, seed))


def crossed_paths(seed=1):
    return cached(f"crossed_insteval_like_seed{seed}", lambda: crossed_insteval_like(seed))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for rows in args.rows:
        print(*two_level_paths(rows, args.groups, args.seed))
    print(*crossed_paths(args.seed))


if __name__ == "__main__":
    main()
