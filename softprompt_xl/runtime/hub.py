"""Reaching the Hugging Face Hub: use what is on disk first, and fail in seconds (not minutes of retries) offline."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

from huggingface_hub import constants


@lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub endpoint opens; huggingface_hub itself would retry for ~50 s."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def is_path(name: str) -> bool:
    """Whether a model name can only mean a directory: a Hub id is `name` or `namespace/name`, never starting with
    `.` (`./`, `../`), `/` or `~`, never with a second `/` or a backslash."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def load_local_first(loader, name: str, **kwargs):
    """`loader(name, **kwargs)` from a local directory or cache if possible, else from the Hub if it answers.

    Raises OSError when the files are neither on disk nor reachable (the caller turns it into advice).
    """
    try:
        return loader(name, local_files_only=True, **kwargs)
    except OSError:
        if os.path.isdir(name) or not hub_reachable():
            raise
    return loader(name, **kwargs)


def snapshot(repo_id: str, cache_dir: str) -> str:
    """The directory of a Hub repository's files: from the local cache if there, else downloaded if the Hub answers.

    Raises OSError when they are neither cached nor reachable (the caller turns it into advice)."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True)
    except Exception:  # huggingface_hub's "not in the cache" errors differ across its versions
        if not hub_reachable():
            raise OSError(f"{repo_id} is not in the cache {cache_dir} and the Hub cannot be reached") from None
    return snapshot_download(repo_id, cache_dir=cache_dir)
