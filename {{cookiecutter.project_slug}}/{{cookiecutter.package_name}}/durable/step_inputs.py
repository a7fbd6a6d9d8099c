"""A step's inputs as recorded for people: encoded once, written with the step's outcome, never replayed.

The dashboard's timeline shows the arguments each step and transaction was called with. They go into
the same INSERT as the step's output (no extra commit), as checkpoint JSON (``serialization.py``), so
the dashboard reads them as data, never as code. Replay never reads them: a step's record is its
outcome. So recording them must not cost the step its run: inputs the codec cannot store, or longer
than ``MAX_INPUTS_CHARS``, are recorded as a placeholder saying why, and the step goes on.
"""

from __future__ import annotations

import json
from typing import Any

from .registry import FunctionInfo
from .serialization import TAG, Codec, compact_json

#: Inputs longer than this (JSON characters) are not kept: the page shows a preview, and a step handed a
#: large payload should not write it twice (the payload is usually in the workflow's inputs already).
MAX_INPUTS_CHARS = 64 * 1024
#: The placeholder's one key; a recorded call is always ``{"args": [...], "kwargs": {...}}``.
UNRECORDED = "unrecorded"
_NO_INPUTS = '{"args":[],"kwargs":{}}'
# Types JSON holds as they are, in every codec format: a call of only these skips the codec's walk.
_SCALARS = frozenset({str, int, bool, float, type(None)})


def encode_inputs(codec: Codec, info: FunctionInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """JSON text of a step's call, or of a placeholder saying why it is not kept; never raises.

    On every new step's path, so the usual calls are cheap: none at all is a constant, and strings and
    numbers (positional or keyword) are written by one shared encoder, as the codec would write them
    but several times faster.
    """
    if info.method_kind in ("instance", "class") and args:
        args = args[1:]  # self or cls: the instance is named by the workflow's row, not a step input
    if not args and not kwargs:
        return _NO_INPUTS
    if (all(type(arg) in _SCALARS for arg in args) and all(type(v) in _SCALARS for v in kwargs.values())
            and TAG not in kwargs):
        try:
            return _kept('{"args":' + compact_json(args) + ',"kwargs":' + compact_json(kwargs) + "}", codec)
        except ValueError:
            pass  # a NaN or an infinity (compact_json refuses them): the codec tags it
    try:
        text = codec.encode({"args": list(args), "kwargs": kwargs}, what=f"{info.kind} {info.name!r} input")
    except Exception as exc:  # anything the codec (or a custom serializer) raises: shown as such, the step runs
        return unrecorded(str(exc))
    return _kept(text, codec)


def _kept(text: str, codec: Codec) -> str:
    limit = min(MAX_INPUTS_CHARS, codec.max_bytes)
    if len(text) > limit:
        return unrecorded(f"{len(text)} characters as JSON, over the {limit} kept for a step's inputs")
    return text


def unrecorded(why: str) -> str:
    """The placeholder recorded instead of inputs that are not kept."""
    return json.dumps({UNRECORDED: why[:1000]}, separators=(",", ":"))
