"""Expensive results computed once per fitted model, and the model's ML and REML versions.

A fitted model is frozen, so what is computed from it never goes stale: a WeakKeyDictionary
keeps each result as long as the model lives.
"""
import weakref

_CACHE = weakref.WeakKeyDictionary()


def _cached(model, key, compute):
    """compute() once per (model, key); the model is frozen, so results never go stale."""
    store = _CACHE.setdefault(model, {})
    if key not in store:
        store[key] = compute()
    return store[key]


def ml_version(model):
    """The model itself if fitted by ML, else its ML refit on the same rows (cached)."""
    return model if not model.REML else _cached(model, "ml", lambda: model.refit(REML=False))


def reml_version(model):
    """The model itself if fitted by REML, else its REML refit on the same rows (cached)."""
    return model if model.REML else _cached(model, "reml", lambda: model.refit(REML=True))
