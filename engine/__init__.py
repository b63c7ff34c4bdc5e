"""The engine: events in, contact state and timers, rules evaluated, actions out.

    ruleset = load_ruleset(["rules/"]).ruleset
    runner = Runner(Engine(ruleset), MemoryStore(), ManualClock())
    decision = await runner.process([parse_event(line) for line in lines])

`Engine.handle` / `Engine.fire` do no I/O: they change a `ContactState` and return a
`Decision`. `Runner` loads and saves states in batches through a `ContactStore` (in memory,
or Redis in `nudge.engine.stores.redis`) and fires timers as its clock passes them.
"""

from .actions import Action
from .clock import Clock, ManualClock, WallClock
from .decision import Decision
from .engine import Engine
from .events import Event, Rejected, iter_jsonl, parse_event, parse_record
from .runner import Runner
from .state import ContactState, ContactStore, Timer
from .stores.memory import MemoryStore

__all__ = [
    "Action",
    "Clock",
    "ContactState",
    "ContactStore",
    "Decision",
    "Engine",
    "Event",
    "ManualClock",
    "MemoryStore",
    "Rejected",
    "Runner",
    "Timer",
    "WallClock",
    "iter_jsonl",
    "parse_event",
    "parse_record",
]
