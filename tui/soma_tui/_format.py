"""Small text renderings shared by the panes: sparklines, arrows, numbers, status colours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

__all__ = [
    "STATUS_STYLES",
    "format_duration",
    "format_time",
    "format_value",
    "sparkline",
    "status_text",
    "trend_text",
]

_BARS = "▁▂▃▄▅▆▇█"

STATUS_STYLES: dict[str, str] = {
    "ok": "green",
    "failed": "bold red",
    "pruned": "yellow",
    "running": "cyan",
}

# Trend names as the knowledge base spells them (enum names or values, any case).
_TREND_ARROWS: dict[str, tuple[str, str]] = {
    "improving": ("↗", "green"),
    "plateaued": ("→", "yellow"),
    "declining": ("↘", "red"),
    "unknown": ("·", "dim"),
}


def sparkline(values: Sequence[float], width: int = 12) -> str:
    """Render ``values`` as a one-line bar sparkline at most ``width`` characters wide.

    Longer series are resampled by taking the last value of each bucket, so the right end
    always shows the latest experiment. Non-finite values are skipped.

    >>> sparkline([1, 2, 3, 4, 5, 6, 7, 8])
    '▁▂▃▄▅▆▇█'
    >>> sparkline([])
    ''
    >>> sparkline([3.0, 3.0])
    '▄▄'
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite or width <= 0:
        return ""
    if len(finite) > width:
        step = len(finite) / width
        finite = [finite[min(len(finite) - 1, math.ceil((i + 1) * step) - 1)] for i in range(width)]
    low, high = min(finite), max(finite)
    if high == low:
        return _BARS[3] * len(finite)
    scale = (len(_BARS) - 1) / (high - low)
    return "".join(_BARS[round((v - low) * scale)] for v in finite)


def trend_text(trend: object) -> Text:
    """A coloured arrow for a knowledge-base trend (enum or string).

    >>> trend_text("IMPROVING").plain
    '↗'
    """
    key = getattr(trend, "value", trend)
    key = getattr(trend, "name", key) if not isinstance(key, str) else key
    arrow, style = _TREND_ARROWS.get(str(key).lower(), _TREND_ARROWS["unknown"])
    return Text(arrow, style=style)


def format_value(value: float | None, digits: int = 4) -> str:
    """Compact number rendering: ``None``/NaN as an em dash, else ``digits`` significant digits.

    >>> format_value(0.973456)
    '0.9735'
    >>> format_value(None)
    '—'
    """
    if value is None:
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "—" if math.isnan(number) else str(number)
    return f"{number:.{digits}g}"


def format_time(moment: datetime | str | float | None) -> str:
    """``HH:MM:SS`` today, ``MM-DD HH:MM`` otherwise; tolerant of ISO strings and timestamps."""
    if moment is None or moment == "":
        return "—"
    when: datetime
    if isinstance(moment, datetime):
        when = moment
    elif isinstance(moment, int | float):
        when = datetime.fromtimestamp(float(moment))
    else:
        try:
            when = datetime.fromisoformat(str(moment))
        except ValueError:
            return str(moment)
    now = datetime.now(when.tzinfo)
    if when.date() == now.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%m-%d %H:%M")


def format_duration(seconds: float | None) -> str:
    """``0.42s``, ``12.3s``, ``4m05s``, ``2h03m``.

    >>> format_duration(245)
    '4m05s'
    """
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def status_text(status: str | None) -> Text:
    """The experiment status coloured by :data:`STATUS_STYLES`."""
    label = status or "—"
    return Text(label, style=STATUS_STYLES.get(label, ""))
