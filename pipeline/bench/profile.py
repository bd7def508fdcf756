"""Read a py-spy ``--format raw`` profile (collapsed stacks) into what dominates.

Each line is ``frame;frame;...;leaf COUNT`` with frames like ``func (path/to/file.py:123)``.
Self time goes to the leaf; inclusive time to every distinct function on the stack; a per-file
view of self time says which module to look at first.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def _parse(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip(), ""
    return m.group("func"), _short(m.group("file"))


def _short(path: str) -> str:
    """Paths shortened to what identifies them: from ``pipeline/`` or the site-packages name on."""
    for marker in ("/pipeline/", "site-packages/", "/lib/python3"):
        i = path.find(marker)
        if i >= 0:
            return path[i + 1:] if marker.startswith("/pipeline") else path[i + len(marker):]
    return path


def summarize_collapsed(path: Path, top: int = 15) -> dict[str, Any]:
    self_by_func: Counter[str] = Counter()
    incl_by_func: Counter[str] = Counter()
    self_by_file: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        func, file = _parse(frames[-1])
        self_by_func[f"{func} ({file})"] += n
        self_by_file[file or func] += n
        for name in {"{} ({})".format(*_parse(f)) for f in frames}:
            incl_by_func[name] += n

    def share(c: Counter[str], below: float = 1.01) -> list[list]:
        if not total:
            return []
        ranked = [[name, round(k / total, 4)] for name, k in c.most_common() if k / total < below]
        return ranked[:top]

    # Inclusive: frames on (nearly) every stack -- the entry point, the runner -- say nothing.
    return {"samples": total, "self_by_function": share(self_by_func), "self_by_file": share(self_by_file),
            "inclusive_by_function": share(incl_by_func, below=0.9), "file": str(path)}
