"""Numerical derivatives: numDeriv's Richardson extrapolation (lmerTest's Hessian and Jacobian)
and lme4's central differences (deriv12, its convergence check).
"""


import numpy as np

ZERO_TOL = np.sqrt(np.finfo(float).eps / 7e-7)  # numDeriv's zero.tol


def _richardson(approx):
    """numDeriv's extrapolation over the first axis of successive halvings of the step."""
    a = np.array(approx, dtype=float)
    r = a.shape[0]
    for m in range(1, r):
        a = (a[1:r + 1 - m] * 4 ** m - a[:r - m]) / (4 ** m - 1)
    return a[0]


def _steps(x, d, eps=1e-4):
    return np.abs(d * x) + eps * (np.abs(x) < ZERO_TOL)


def hessian(f, x, d=0.1, r=4):
    """numDeriv::hessian(f, x) (genD with Richardson extrapolation)."""
    x = np.asarray(x, dtype=float)
    n, f0, h0 = len(x), f(x), _steps(x, d)
    diag = np.zeros(n)
    H = np.zeros((n, n))
    for i in range(n):
        approx = []
        for k in range(r):
            e = np.zeros(n)
            e[i] = h0[i] / 2 ** k
            approx.append((f(x + e) - 2 * f0 + f(x - e)) / e[i] ** 2)
        diag[i] = H[i, i] = _richardson(approx)
    for i in range(n):
        for j in range(i):
            approx = []
            for k in range(r):
                h = h0 / 2 ** k
                e = np.zeros(n)
                e[i], e[j] = h[i], h[j]
                approx.append((f(x + e) - 2 * f0 + f(x - e) - diag[i] * h[i] ** 2 - diag[j] * h[j] ** 2)
                              / (2 * h[i] * h[j]))
            H[i, j] = H[j, i] = _richardson(approx)
    return H


def jacobian(f, x, d=1e-4, r=4):
    """numDeriv::jacobian(f, x) for an array-valued f: (n, *shape of f)."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x, d)
    out = []
    for i in range(len(x)):
        approx = []
        for k in range(r):
            e = np.zeros(len(x))
            e[i] = h0[i] / 2 ** k
            approx.append((f(x + e) - f(x - e)) / (2 * e[i]))
        out.append(_richardson(approx))
    return np.array(out)


DERIVATIVE_STEP = 1e-4       # lme4's deriv12 delta


def derivatives(f, x, step=DERIVATIVE_STEP):
    """Gradient and Hessian of f at x by central differences (lme4's deriv12)."""
    k = len(x)
    f0 = f(x)
    grad, hess = np.zeros(k), np.zeros((k, k))
    eye = np.eye(k) * step
    for i in range(k):
        up, down = f(x + eye[i]), f(x - eye[i])
        grad[i] = (up - down) / (2 * step)
        hess[i, i] = (up - 2 * f0 + down) / step ** 2
        for j in range(i):
            hess[i, j] = hess[j, i] = (f(x + eye[i] + eye[j]) - f(x + eye[i] - eye[j])
                                       - f(x - eye[i] + eye[j]) + f(x - eye[i] - eye[j])) / (4 * step ** 2)
    return grad, hess
