"""Dynamic segments: re-evaluated after each event and timer; membership changes emit
`segment_entered` / `segment_left` and fire `entered S` / `left S` rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .decision import Context
from .events import Event
from .steps import emit_event

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["reevaluate"]

_NO_BINDINGS: dict[str, Any] = {}


def reevaluate(engine: Engine, ctx: Context, cause: Event) -> None:
    """Bring `contact.segments` up to date; `cause` is the event (or the timer's event) that
    the change is due to."""
    segments = engine.segments
    if not segments or ctx.segments_at == ctx.changes:
        return
    ctx.segments_at = ctx.changes
    traits = ctx.traits
    now = ctx.now
    state = ctx.state
    current = traits.get("segments")
    if type(current) is not list:
        current = []
    changes: list[tuple[str, bool]] | None = None
    for seg in segments:
        inside = seg.condition(_NO_BINDINGS, traits, now, state) is True
        if inside != (seg.name in current):
            if changes is None:
                changes = []
            changes.append((seg.name, inside))
    if changes is None:
        return
    entered = {name for name, inside in changes if inside}
    left = {name for name, inside in changes if not inside}
    traits["segments"] = [s for s in current if s not in left] + [
        s.name for s in segments if s.name in entered
    ]
    ctx.changes += 1
    ctx.segments_at = ctx.changes
    for name, inside in changes:
        kind = "segment_entered" if inside else "segment_left"
        if engine.trace:
            ctx.record("segment", None, {"segment": name, "entered": inside})
        emit_event(engine, ctx, kind, {"segment": name}, f"{cause.id}/{name}")
        trigger = "entered" if inside else "left"
        for rule in engine.on_segment.get(name, ()):
            if rule.trigger.kind == trigger:
                engine.fire_rule(ctx, rule, {"event": cause, cause.type: cause}, cause.id)
