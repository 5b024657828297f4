"""The typed events strategies report, and the global listener functions.

See :mod:`buttress._core.events` for how delivery works; this module is the
public place to import event classes from::

    from buttress.events import RetryScheduled, StateChanged
"""

from buttress._core.events import (
    GLOBAL,
    AttemptFailed,
    AttemptStarted,
    CallRejected,
    Event,
    FallbackUsed,
    GaveUp,
    Listener,
    Listeners,
    RetryScheduled,
    SlowCall,
    StateChanged,
    Succeeded,
    TimedOut,
    add_listener,
    register_kind,
    remove_listener,
)
from buttress._core.operation import CallFinished, CallStarted

__all__ = [
    "GLOBAL",
    "AttemptFailed",
    "AttemptStarted",
    "CallFinished",
    "CallRejected",
    "CallStarted",
    "Event",
    "FallbackUsed",
    "GaveUp",
    "Listener",
    "Listeners",
    "RetryScheduled",
    "SlowCall",
    "StateChanged",
    "Succeeded",
    "TimedOut",
    "add_listener",
    "register_kind",
    "remove_listener",
]
