"""The VAREC_* environment contract, read in one place."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "varec"


def expand_user(value: str | os.PathLike) -> Path:
    """`~/x` and `~user/x` expanded; a `~name` naming no user kept as it is (a path that does not
    exist, said as such where it is used), rather than Python's RuntimeError."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        return Path(value)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """Where downloaded weights live: VAREC_CACHE_DIR, else the per-user cache dir."""
    env = os.environ.get("VAREC_CACHE_DIR")
    if env:
        return expand_user(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def data_dir() -> Path:
    """Where dataset names such as `ucf101` resolve: VAREC_DATA_DIR, else user data dir + /datasets."""
    env = os.environ.get("VAREC_DATA_DIR")
    if env:
        return expand_user(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME)) / "datasets"


def user_registry_path() -> Path | None:
    """An extra registry TOML whose entries add to or override the shipped ones."""
    env = os.environ.get("VAREC_REGISTRY")
    return expand_user(env) if env else None


def offline() -> bool:
    return _truthy(os.environ.get("VAREC_OFFLINE"))


def debug() -> bool:
    return _truthy(os.environ.get("VAREC_DEBUG"))
