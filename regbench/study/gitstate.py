"""The commit a study file was at, and whether its repository's tracked files had changes, read from the
repository's own files — never by running ``git``. Running git in a folder runs that repository's
configuration: ``core.fsmonitor`` names a program git starts, a ``filter.<name>.clean`` named in
``.gitattributes`` is a command it runs on every file it hashes, and a study received as an archive with its
``.git/`` would run its sender's commands on every ``regbench run``.

What is read: ``.git`` (a folder, or a file naming one: worktrees, submodules), ``HEAD``, the ref it names
(loose or in ``packed-refs``) and the index (formats 2 to 4). A tracked file is changed when it is missing, or
its size or modification time differ from the index and its content hashes to another blob. Content is hashed as
it is on disk: a repository whose clean filters change files (Git LFS, line-ending conversion) may read as
changed where ``git status`` would not. Files are read only when they are regular files of the work tree, never
through a link, and within a size bound.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path

MOST_INDEX_BYTES = 256 * 2**20
MOST_HASHED_BYTES = 64 * 2**20  # a tracked file larger than this is not hashed (taken as changed if its stat is)


def find_repository(folder: Path) -> tuple[Path, Path] | None:
    """(the work tree, its git directory) of the repository ``folder`` lies in, or None."""
    for top in (folder, *folder.parents):
        dot = top / ".git"
        if dot.is_dir() and not dot.is_symlink():
            return top, dot
        if dot.is_file() and not dot.is_symlink():
            text = _small(dot)
            if text is not None and text.startswith("gitdir:"):
                gitdir = Path(text.split(":", 1)[1].strip())
                gitdir = gitdir if gitdir.is_absolute() else (top / gitdir)
                if gitdir.is_dir():
                    return top, gitdir
            return None
    return None


def _small(path: Path, limit: int = 2**16) -> str | None:
    """A small regular file as stripped text, or None."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or os.path.getsize(path) > limit:
            return None
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _common(gitdir: Path) -> Path:
    """The repository's common directory (a worktree's ``commondir`` file names it)."""
    named = _small(gitdir / "commondir")
    return (gitdir / named).resolve() if named else gitdir


def head_commit(gitdir: Path) -> str | None:
    """The commit HEAD is at (40 hex digits), or None (an unborn branch, a damaged repository)."""
    head = _small(gitdir / "HEAD")
    if head is None:
        return None
    for _ in range(5):  # a symbolic ref may name another
        if not head.startswith("ref:"):
            return head if _is_sha(head) else None
        ref = head.split(":", 1)[1].strip()
        if ".." in Path(ref).parts:
            return None
        found = None
        for base in (gitdir, _common(gitdir)):
            found = _small(base / ref)
            if found is not None:
                break
        if found is None:
            found = _packed(_common(gitdir), ref)
        if found is None:
            return None
        head = found
    return None


def _packed(common: Path, ref: str) -> str | None:
    text = _small(common / "packed-refs", limit=64 * 2**20)
    for line in (text or "").splitlines():
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[1] == ref and _is_sha(parts[0]):
            return parts[0]
    return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def index_entries(gitdir: Path) -> list[tuple[str, int, int, int, bytes]] | None:
    """The index's entries at stage 0 as (path, mode, size, mtime in ns, sha1), or None when it cannot be read."""
    path = gitdir / "index"
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or os.path.getsize(path) > MOST_INDEX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return _parse_index(data)
    except (struct.error, ValueError, IndexError):
        return None


def _parse_index(data: bytes) -> list[tuple[str, int, int, int, bytes]]:
    signature, version, count = struct.unpack(">4sII", data[:12])
    if signature != b"DIRC" or version not in (2, 3, 4):
        raise ValueError("not a git index")
    entries, offset, previous = [], 12, b""
    for _ in range(count):
        start = offset
        fields = struct.unpack(">10I", data[offset : offset + 40])
        mtime_ns = fields[2] * 10**9 + fields[3]
        mode, size = fields[6], fields[9]
        sha = data[offset + 40 : offset + 60]
        flags = struct.unpack(">H", data[offset + 60 : offset + 62])[0]
        offset += 62
        extended = version >= 3 and flags & 0x4000
        if extended:
            offset += 2
        stage = (flags >> 12) & 0x3
        if version == 4:
            strip, used = _varint(data, offset)
            offset += used
            end = data.index(b"\0", offset)
            name = previous[: len(previous) - strip] + data[offset:end]
            offset = end + 1
        else:
            end = data.index(b"\0", offset)
            name = data[offset:end]
            offset = start + ((62 + (2 if extended else 0) + len(name) + 8) // 8) * 8
        previous = name
        if stage == 0:
            entries.append((name.decode("utf-8", errors="surrogateescape"), mode, size, mtime_ns, sha))
    return entries


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """Git's offset varint (index format 4): value and bytes used."""
    value, used = data[offset] & 0x7F, 1
    while data[offset + used - 1] & 0x80:
        value = ((value + 1) << 7) | (data[offset + used] & 0x7F)
        used += 1
    return value, used


def _blob(data: bytes) -> bytes:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).digest()


def changed(top: Path, gitdir: Path) -> bool | None:
    """Whether a tracked file of the work tree differs from the index (None: the index cannot be read, or the
    repository uses SHA-256, which is not hashed here)."""
    entries = index_entries(gitdir)
    if entries is None:
        return None
    for name, mode, size, mtime_ns, sha in entries:
        if len(sha) != 20 or mode >> 12 == 0o16:  # a submodule (gitlink): its own repository
            continue
        path = top / name
        if any(part == ".." for part in Path(name).parts):
            return None
        try:
            info = os.lstat(path)
        except OSError:
            return True  # deleted
        if mode >> 12 == 0o12:  # a symbolic link: its target is its content
            if not stat.S_ISLNK(info.st_mode):
                return True
            if _blob(os.fsencode(os.readlink(path))) != sha:
                return True
            continue
        if not stat.S_ISREG(info.st_mode):
            return True
        if info.st_size == size and info.st_mtime_ns == mtime_ns:
            continue  # as git does: unchanged since the index recorded it
        if info.st_size > MOST_HASHED_BYTES:
            return True
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fh:
                content = fh.read(MOST_HASHED_BYTES + 1)
        except OSError:
            return True
        if _blob(content) != sha:
            return True
    return False


def git_state(folder: Path) -> dict | None:
    """``{commit, dirty, repository}`` of the repository ``folder`` lies in, or None outside one."""
    found = find_repository(folder.resolve())
    if found is None:
        return None
    top, gitdir = found
    commit = head_commit(gitdir)
    if commit is None:
        return None
    return {"commit": commit, "dirty": changed(top, gitdir), "repository": str(top)}
