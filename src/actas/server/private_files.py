"""Owner-only files and directories for what actas keeps on disk.

The data directory holds the instance secret and, by default, the SQLite
database with its password hashes and audit log. Created with the process's
umask they would be world-readable (0644 files, 0755 directories under the
usual 022), so actas sets the modes itself: 0700 for a directory it creates,
0600 for a file it creates. Files that already exist lose any group and
other permission bits (an upgrade from a version that left them readable);
an existing directory is left as the operator made it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("actas.server")

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_directory(path: Path) -> None:
    """Make ``path`` (and any missing parents) exist; if it is created here, mode 0700."""
    if path.is_dir():
        return
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    # mkdir's mode passes through the umask, which may take more than it should
    # leave (a umask of 0o277 would make the directory unusable): set it exactly.
    path.chmod(DIRECTORY_MODE)


def private_file(path: Path) -> None:
    """Make ``path`` exist as a file only its owner can read and write.

    A new file is 0600 from its first byte; an existing one keeps its content
    and loses its group and other permission bits.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        restrict(path)
        return
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask took away from 0600
    finally:
        os.close(fd)


def restrict(path: Path) -> None:
    """Remove the group and other permission bits of an existing file, if it has any."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            path.chmod(mode & 0o700)
        except PermissionError:  # owned by another user: say so, it is the operator's to fix
            log.warning("%s is readable by other users and actas cannot change its mode "
                        "(%o); restrict it to its owner (chmod 600).", path, mode)
