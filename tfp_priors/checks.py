"""Checks of a run's settings before any work: one-line errors naming the binding, its value and
the fix.

Gin passes a binding's value as written (`train.num_steps = 'abc'` is a string, `20.5` a float),
so every integer and number setting of a run is checked here, when the run's parts are built and
before a workdir is touched, data loaded or a model built.
"""
import numbers
import re
import tokenize


class BadSettingError(ValueError):
  """A setting (gin binding or flag) has a value a run cannot use; the message says which."""


def integer(name, value, minimum=None, optional=False):
  """Checks that `value` is an int (not a bool, float or string) >= minimum.

  Args:
    name: the binding as the user writes it, e.g. 'train.num_steps'.
    value: the bound value. minimum: smallest allowed value (None: any).
    optional: None is allowed too.

  Raises:
    BadSettingError: naming `name`, `value` and what to write instead.
  """
  if optional and value is None:
    return
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise BadSettingError(f"{name} = {value!r} is not an integer; write a whole number"
                          f"{_range(minimum)}, e.g. {name} = {_example(value, minimum)}.")
  if minimum is not None and value < minimum:
    raise BadSettingError(f"{name} = {value} is below {minimum}; set it to an integer"
                          f"{_range(minimum)}.")


def number(name, value, minimum=None, maximum=None, positive=False, optional=False):
  """Checks that `value` is a finite real number (int or float, not a bool or string) in
  [minimum, maximum], and > 0 when `positive`.

  Raises:
    BadSettingError: naming `name`, `value` and the allowed range.
  """
  if optional and value is None:
    return
  allowed = ("a number > 0" if positive else "a number") + (
      f" >= {minimum}" if minimum is not None else "") + (
          f" <= {maximum}" if maximum is not None else "")
  if (isinstance(value, bool) or not isinstance(value, numbers.Real)
      or value != value or value in (float("inf"), float("-inf"))):
    raise BadSettingError(f"{name} = {value!r} is not a finite number; set it to {allowed}.")
  if ((positive and not value > 0) or (minimum is not None and value < minimum)
      or (maximum is not None and value > maximum)):
    raise BadSettingError(f"{name} = {value} is out of range; set it to {allowed}.")


def _range(minimum):
  return "" if minimum is None else f" >= {minimum}"


def _example(value, minimum):
  """A valid value close to what was written (20.5 -> 20), for the message."""
  if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value:
    guess = int(value) if abs(value) < 2**62 else 0
  else:
    guess = 0
  return max(guess, minimum if minimum is not None else guess)


# What gin raises for a config it cannot parse: a syntax error (with its line), a file that
# ends inside a bracket (tokenize), an unknown configurable or parameter (ValueError / KeyError
# naming the line), a value nested too deeply.
GIN_PARSE_ERRORS = (SyntaxError, tokenize.TokenError, ValueError, KeyError, RecursionError)
_GIN_LOCATION = re.compile(r'In (?:file ".*",|bindings string) line (\d+)')


def describe_gin_error(source, error):
  """`error` (one of GIN_PARSE_ERRORS) of gin parsing `source` (a file name or
  '--gin_bindings') in one line: '<source> line <n>: <reason>', without a final period."""
  if isinstance(error, SyntaxError):
    reason = (error.msg or "syntax error").strip().splitlines()[-1].strip().rstrip(".")
    where = f" in `{excerpt(error.text)}`" if error.text and error.text.strip() else ""
    return f"{source} line {error.lineno}: {reason}{where}"
  if isinstance(error, tokenize.TokenError):  # at the end of the text
    return f"{source}: {error.args[0]}: it ends inside an open bracket or quote (truncated?)"
  if isinstance(error, RecursionError):
    return f"{source}: a value is nested too deeply"
  message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
  found = _GIN_LOCATION.search(message)
  first = message.strip().splitlines()[0] if message.strip() else type(error).__name__
  return (f"{source}{f' line {found.group(1)}' if found else ''}: "
          f"{excerpt(first, 200).rstrip('.')}")


def excerpt(text, width=80):
  """`text` on one line (whitespace runs as one space, other unprintable characters as ?),
  cut to `width` characters."""
  text = "".join(c if c.isprintable() else "?" for c in " ".join(str(text).split()))
  return text if len(text) <= width else text[:width - 3] + "..."
