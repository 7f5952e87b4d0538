"""Helpers for plug-ins: page 83 formatting, multipath tear-down, split plug-in checks.

- :func:`makeMPPage83FromRawPage83` turns a raw SCSI page 0x83 identifier into the
  ``page83_id`` form spindle requires (the WWID multipath uses).
- :func:`destroyMPDev` flushes a multipath map (``multipath -f``).
- :func:`checkRequired` makes sure the packages a split plug-in depends on are installed.

External tools are always run with an argument vector (never through a shell), with their
output captured so that nothing reaches the plug-in's standard output.
"""

from OSCPlugin import (
    InvalidValueEx,
    OperationFailedEx,
    OperationPreReqNotMetEx,
    ValueFormatEx,
)

__all__ = ["makeMPPage83FromRawPage83", "destroyMPDev", "checkRequired"]

# --------------------------------------------------------------------------------------------
# makeMPPage83FromRawPage83: the same algorithm as spindle-api's page83.rs.
# --------------------------------------------------------------------------------------------

# Characters Rust's char::is_whitespace accepts (Unicode White_Space), used so that trimming
# and the '_' substitution give the same results as the Rust implementation.
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_HEX = frozenset("0123456789abcdefABCDEF")
_UNRANKED = 255


def _not_hex(raw):
    return ValueFormatEx("raw page 83 id '%s' is not hexadecimal" % raw, "page83_id")


def _unrecognised(raw):
    return ValueFormatEx(
        "raw page 83 id '%s' is neither a VPD page 0x83, a designation descriptor nor an NAA "
        "or EUI-64 identifier" % raw, "page83_id")


def _no_designator(raw):
    return ValueFormatEx(
        "VPD page 0x83 '%s' holds no NAA, EUI-64, T10 or SCSI name designator for the logical "
        "unit" % raw, "page83_id")


def _rank(kind, body):
    """scsi_id's preference: NAA (IEEE registered extended first), EUI-64, T10, SCSI name."""
    if kind == 3:
        naa = body[0] >> 4 if body else None
        if naa == 6:
            return 0
        if naa == 5:
            return 1
        return 2
    if kind == 2:
        return 3
    if kind == 1:
        return 4
    if kind == 8:
        return 5
    return _UNRANKED


def _format(kind, body):
    if kind in (2, 3):
        return "%d%s" % (kind, body.hex())
    if kind in (1, 8):
        text = body.decode("utf-8", "replace").rstrip("\0").strip(_WHITESPACE)
        text = "".join("_" if c in _WHITESPACE else c for c in text)
        return "%d%s" % (kind, text)
    return None


def _descriptors(data):
    """The designation descriptors in ``data`` as (kind, association, body), or None if the
    bytes do not divide into descriptors exactly."""
    out = []
    while data:
        if len(data) < 4:
            return None
        length = data[3]
        if len(data) < 4 + length:
            return None
        out.append((data[1] & 0x0F, (data[1] >> 4) & 0x03, data[4:4 + length]))
        data = data[4 + length:]
    return out


def _best(descriptors):
    candidates = [(_rank(kind, body), kind, body)
                  for kind, association, body in descriptors
                  if association == 0 and _rank(kind, body) != _UNRANKED]
    if not candidates:
        return None
    # min() keeps the first of equal ranks, as the Rust implementation does.
    _, kind, body = min(candidates, key=lambda c: c[0])
    return _format(kind, body)


def makeMPPage83FromRawPage83(raw):
    """Formats a raw SCSI page 0x83 identifier as ``page83_id``: one digit naming the
    designator type, then the identifier (``3`` + hex for NAA, ``2`` + hex for EUI-64,
    ``1`` + text for a T10 vendor id, ``8`` + text for a SCSI name string).

    ``raw`` is hexadecimal text (spaces, colons, dashes and a ``0x`` prefix are ignored)
    holding a whole VPD page 0x83, one designation descriptor, or a bare NAA identifier. An id
    already in this form is returned in lower case. Anything else raises
    :class:`ValueFormatEx` for the key ``page83_id``.
    """
    if not isinstance(raw, str):
        if isinstance(raw, (bytes, bytearray)):
            raw = bytes(raw).decode("ascii", "replace")
        else:
            raise ValueFormatEx("raw page 83 id must be text, not %s" % type(raw).__name__,
                                "page83_id")
    cleaned = raw.strip(_WHITESPACE)
    while cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    while cleaned.startswith("0X"):
        cleaned = cleaned[2:]
    cleaned = "".join(c for c in cleaned if c not in " :-\t\n")
    if not cleaned or any(c not in _HEX for c in cleaned):
        raise _not_hex(raw)
    cleaned = cleaned.lower()
    # Already formatted: a type digit in front of an even number of hex digits.
    if len(cleaned) % 2 == 1:
        kind, rest = cleaned[0], cleaned[1:]
        nibble = int(rest[0], 16) if rest else None
        if (kind == "3" and nibble in (2, 3, 5, 6)) or (kind == "2" and nibble is not None):
            return cleaned
        raise _unrecognised(raw)
    data = bytes.fromhex(cleaned)
    # A whole page: byte 1 is the page code, bytes 2..4 the length of what follows.
    if len(data) >= 4 and data[1] == 0x83:
        page_len = (data[2] << 8) | data[3]
        if page_len == len(data) - 4:
            descriptors = _descriptors(data[4:])
            if descriptors is not None:
                best = _best(descriptors)
                if best is None:
                    raise _no_designator(raw)
                return best
    # One designation descriptor.
    if len(data) >= 4 and data[3] == len(data) - 4:
        descriptors = _descriptors(data)
        if descriptors:
            best = _best(descriptors)
            if best is not None:
                return best
    # A bare NAA identifier (8 or 16 bytes, NAA field 2, 3, 5 or 6).
    if len(data) in (8, 16) and (data[0] >> 4) in (2, 3, 5, 6):
        return "3" + cleaned
    raise _unrecognised(raw)


# --------------------------------------------------------------------------------------------
# External tools
# --------------------------------------------------------------------------------------------

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-:~")
_TOOL_TIMEOUT = 120


def _safe_name(value, what):
    """A package or device-map name safe to pass as one argument: no shell characters, no
    path separators, not an option."""
    if not isinstance(value, str) or not value:
        raise InvalidValueEx("%s must be a non-empty string, not %r" % (what, value))
    if value.startswith("-") or value in (".", "..") or any(c not in _NAME_CHARS for c in value):
        raise InvalidValueEx(
            "%s %r is not acceptable: only letters, digits and . _ + - : ~ are allowed, and it "
            "may not start with '-'" % (what, value))
    return value


def _run(argv):
    """Runs ``argv``; returns (returncode, stdout text, stderr text)."""
    import subprocess

    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=_TOOL_TIMEOUT, close_fds=True)
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"))


def _which(tool):
    import shutil

    return shutil.which(tool)


def _excerpt(text, limit=300):
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _installed_rpm(rpm, package):
    code, _out, _err = _run([rpm, "-q", "--quiet", package])
    return code == 0


def _installed_dpkg(dpkg_query, package):
    code, out, _err = _run([dpkg_query, "-W", "-f=${Status}", package])
    # "install ok installed"; a removed package reads "deinstall ok config-files" and an
    # unknown one fails or reads "unknown ok not-installed".
    return code == 0 and out.split()[-1:] == ["installed"]


def checkRequired(*packages):
    """Makes sure every package named is installed; raises
    :class:`OperationPreReqNotMetEx` naming the first one that is not.

    A split plug-in calls this at the start of each method that needs what its requirer
    package brings in, with that package's name, e.g.
    ``checkRequired("acme-fastarray-requirer")``. Installation is checked with ``rpm`` or
    ``dpkg-query``, whichever the server has.
    """
    if len(packages) == 1 and isinstance(packages[0], (list, tuple)):
        packages = tuple(packages[0])
    if not packages:
        raise InvalidValueEx("checkRequired needs the name of at least one package")
    names = [_safe_name(p, "package name") for p in packages]
    checkers = []
    rpm = _which("rpm")
    if rpm:
        checkers.append((_installed_rpm, rpm))
    dpkg_query = _which("dpkg-query")
    if dpkg_query:
        checkers.append((_installed_dpkg, dpkg_query))
    if not checkers:
        raise OperationPreReqNotMetEx(
            "cannot tell whether the required package %s is installed: this server has "
            "neither rpm nor dpkg-query" % names[0])
    for name in names:
        try:
            found = any(check(tool, name) for check, tool in checkers)
        except Exception as e:  # timeouts, a tool that cannot be run
            raise OperationPreReqNotMetEx(
                "cannot tell whether the required package %s is installed: %s" % (name, e))
        if not found:
            raise OperationPreReqNotMetEx(
                "the package %s is not installed on this server; this plug-in needs it for "
                "this operation (install it, then retry)" % name)


_MAPPER_PREFIX = "/dev/mapper/"


def destroyMPDev(dev):
    """Tears down (flushes) the multipath map ``dev`` with ``multipath -f``.

    ``dev`` is a map name or WWID (``mpatha``, ``36001405...``) or its path under
    ``/dev/mapper/``. Raises :class:`InvalidValueEx` for anything else,
    :class:`OperationFailedEx` when the multipath tool is not installed or the flush fails
    (for example because the map is still open).
    """
    if isinstance(dev, str) and dev.startswith(_MAPPER_PREFIX):
        name = dev[len(_MAPPER_PREFIX):]
    else:
        name = dev
    if isinstance(name, str) and "/" in name:
        raise InvalidValueEx(
            "multipath device %r is not acceptable: give a map name or /dev/mapper/<map>"
            % (dev,))
    name = _safe_name(name, "multipath device")
    multipath = _which("multipath")
    if not multipath:
        raise OperationFailedEx(
            "cannot tear down the multipath device %s: the multipath tool is not installed on "
            "this server (it comes with the multipath-tools / device-mapper-multipath "
            "package)" % name)
    try:
        code, out, err = _run([multipath, "-f", name])
    except Exception as e:
        raise OperationFailedEx("running multipath -f %s failed: %s" % (name, e))
    if code != 0:
        raise OperationFailedEx("multipath -f %s failed with exit status %d: %s"
                                % (name, code, _excerpt(err or out) or "no message"))
