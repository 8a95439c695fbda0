"""polis-like: deliberation at scale, faithful to the Pol.is opinion math."""

import os

__version__ = "0.1.0"


def _numba_cache_dir() -> str | None:
    """Where numba keeps the compiled kernels (``cache=True``), set before numba is imported.

    By default numba writes its cache next to the source, or under ``~/.cache/numba`` when the
    package cannot be written (a read-only site-packages), and fails at import when neither can
    be. Here it is one folder per user, ``$XDG_CACHE_HOME/polis-like/numba`` (``~/.cache/...``),
    else a private folder in the temporary directory (a service account without a home), so that
    every process after the first loads the kernels instead of compiling them (about 2 s).
    ``NUMBA_CACHE_DIR`` set by the user wins. A folder that another user owns or can write is
    never used: numba loads its cache as code.
    """
    if "NUMBA_CACHE_DIR" in os.environ:
        return None
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates = [os.path.join(home, "polis-like", "numba")]
    if hasattr(os, "getuid"):
        import tempfile

        candidates.append(os.path.join(tempfile.gettempdir(), f"polis-like-numba-{os.getuid()}"))
    for folder in candidates:
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            info = os.stat(folder)
            if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
                continue
            if os.access(folder, os.W_OK):
                os.environ["NUMBA_CACHE_DIR"] = folder
                return folder
        except OSError:
            continue
    return None


_numba_cache_dir()
