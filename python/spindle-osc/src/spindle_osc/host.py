"""The host facilities a plug-in reaches through ``IPlugin``: cache, temporary files, logging.

``current`` is the host in use. Inside spindle the runner replaces it with a host that forwards
every request over the protocol channel; outside spindle (a vendor running a plug-in from
its own test script) a :class:`LocalHost` stands in, so ``IPlugin.cache`` and
``IPlugin.getNamedTemporaryFile()`` still behave sensibly.

Only the standard library is used, and nothing expensive is imported up front.
"""

import os
import sys
import time

#: Default lifetime of a cache entry, in seconds.
DEFAULT_EXPIRE_TIME = 30

#: Levels of the host's logger, as the protocol names them.
LEVELS = ("debug", "info", "warning", "error", "critical")


def level_name(levelno):
    """Maps a :mod:`logging` level number onto the protocol's level names."""
    if levelno >= 50:
        return "critical"
    if levelno >= 40:
        return "error"
    if levelno >= 30:
        return "warning"
    if levelno >= 20:
        return "info"
    return "debug"


class HostError(Exception):
    """The host refused a request (carries the host's message)."""


class LocalHost(object):
    """Host facilities without spindle: an in-process cache with expiry, temporary files
    under the system's temporary directory (removed when the process exits), and log
    records written to standard error."""

    def __init__(self):
        self._cache = {}
        self._temp_files = []

    # cache -------------------------------------------------------------------------------
    def cache_get(self, ss_uuid, cache_key):
        entry = self._cache.get((ss_uuid, cache_key))
        if entry is None:
            return None
        value, expires = entry
        if expires <= time.monotonic():
            del self._cache[(ss_uuid, cache_key)]
            return None
        return value

    def cache_set(self, ss_uuid, cache_key, cache_value, expire_time):
        if cache_value is None:
            self._cache.pop((ss_uuid, cache_key), None)
        else:
            self._cache[(ss_uuid, cache_key)] = (cache_value, time.monotonic() + expire_time)

    def cache_extend(self, ss_uuid, cache_key, extend_time):
        entry = self._cache.get((ss_uuid, cache_key))
        if entry is not None:
            self._cache[(ss_uuid, cache_key)] = (entry[0], entry[1] + extend_time)

    def cache_clear(self, ss_uuid):
        for key in [k for k in self._cache if k[0] == ss_uuid]:
            del self._cache[key]

    # temporary files ---------------------------------------------------------------------
    def temp_file(self):
        import tempfile

        fd, path = tempfile.mkstemp(prefix="spindle-osc-")
        os.close(fd)
        if not self._temp_files:
            import atexit

            atexit.register(self._remove_temp_files)
        self._temp_files.append(path)
        return path

    def _remove_temp_files(self):
        for path in self._temp_files:
            try:
                os.remove(path)
            except OSError:
                pass
        self._temp_files = []

    # logging -----------------------------------------------------------------------------
    def log(self, level, message):
        try:
            sys.stderr.write("[%s] %s\n" % (level, message))
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass

    def warning(self, message):
        self.log("warning", message)


#: The host in use; the runner replaces it.
current = LocalHost()
