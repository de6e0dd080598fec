"""Today's estimated spend on disk, so that a restart does not reset the daily budget."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def default_path() -> Path:
    """systemd's StateDirectory when the unit has one, else the XDG state folder."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = (
        Path(state) if state else Path(os.environ.get("XDG_STATE_HOME") or "~/.local/state").expanduser() / "captioner"
    )
    return base / "spend.json"


def load(path: Path) -> tuple[dt.date, float] | None:
    """The day and amount saved last; None when there is no usable file (a fresh start is not an error)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return dt.date.fromisoformat(data["day"]), float(data["spent"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("ignoring unreadable spend file %s: %s", path, e)
        return None


def save(path: Path, day: dt.date, spent: float) -> None:
    """Write atomically (a crash mid-write must not lose the day's total)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"day": day.isoformat(), "spent": round(spent, 6)}), encoding="utf-8")
    tmp.replace(path)
