"""Progress lines: the remaining time of a loop from its rate so far."""
import math


def duration(seconds):
  """A duration for the console: '45s', '3m05s', '2h07m' ('?' when unknown)."""
  if seconds is None or not math.isfinite(seconds) or seconds < 0:
    return "?"
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta(done, total, elapsed):
  """The expected remaining time of `total` units after `done` took `elapsed` seconds, at the
  rate so far, as `duration` writes it ('?' before the first unit or without a total)."""
  if not done or total is None or elapsed <= 0:
    return "?"
  return duration((total - done) * elapsed / done)
