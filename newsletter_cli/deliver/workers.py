"""The sending workers: N connections sharing one queue, rate limiter and journal, with a deferred queue.

Why it is built this way:
- A 4xx for one member (greylisting) must not stall the others: that member goes on a retry queue with a
  due time and the connection goes on with the next member. Only replies about the connection or the
  account (421, 4.3.2, throttling, no connection at all) pause that worker, with backoff, and Microsoft
  365's concurrency limit retires the worker while others still run (fewer connections).
- A reply lost after the final dot means the member may have the message: `uncertain`, never retried here.
- Signals only set the stop flag, so every transaction in progress finishes and is recorded; a second
  Ctrl+C (whenever it comes) aborts at once and names the members whose outcome is now unknown, and so does
  a server that has not answered STOP_GRACE seconds after the stop (its data timeout may be 10 minutes).
- The hooks (`progress`, `notify`: the command line's display) are called guarded: a display that fails must
  not stop a send after the server accepted the message.
- One login per run: the other connections open only after the first one has logged in.
- An unexpected exception in a worker (a bug) stops the send with one line that names the edition's
  send-errors.log, where its traceback is: the journal has recorded everything up to it.
"""

from __future__ import annotations

import heapq
import itertools
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from newsletter_cli.deliver.ratelimit import RateLimiter
from newsletter_cli.deliver.replies import Fatal, Permanent, ReplyLost, Temporary
from newsletter_cli.deliver.request import REAL_TUNING, RECONNECT_DELAYS, Tuning
from newsletter_cli.deliver.smtp import Connection
from newsletter_cli.errors import NewsletterError
from newsletter_cli.members.recipients import Recipient
from newsletter_cli.project import display

if TYPE_CHECKING:
    from newsletter_cli.deliver.plan import Plan

MAX_FAILURES_IN_A_ROW = 10
MAX_DROPS = 3  # a member whose transaction loses the connection this often is deferred, not tried forever
STOP_GRACE = 60.0  # seconds the messages in progress get to finish after a stop before the send aborts
# Windows console events (wincon.h) that end the process soon after the handler returns: finish as for Ctrl+C.
CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT = 2, 5, 6
CONSOLE_EVENTS = {CTRL_CLOSE_EVENT: "the window was closed", CTRL_LOGOFF_EVENT: "logging off",
                  CTRL_SHUTDOWN_EVENT: "shutting down"}
WINDOWS = sys.platform == "win32"  # a variable, so that mypy checks the Windows part on every platform
CONSOLE_WAIT = 4.5  # Windows ends the process about 5 s after a close event, whatever the handler does
__all__ = ["NO_HOOKS", "RECONNECT_DELAYS", "Hooks", "Outcome", "Progress", "Sender"]
SEND_ERRORS_LOG = "send-errors.log"  # in the edition's folder: the traceback of an internal error
CONCURRENCY = ("4.3.2", "concurren")


class JournalLike(Protocol):
    def mark_sending(self, address: str, fingerprint: str, message_id: str) -> None: ...

    def message_id(self, address: str) -> str: ...

    def mark(self, address: str, state: str, reply: str = "") -> None: ...

    def recover(self) -> list[str]: ...


class Factory(Protocol):
    from_address: str

    def message_id(self) -> str: ...

    def for_recipient(self, recipient: Recipient, message_id: str | None = None) -> bytes: ...


@dataclass
class Counts:
    """This run's members by outcome: one set of counters for the progress bar and the result."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    uncertain: int = 0

    def add(self, state: str) -> None:
        """Count one member in `state` (sent, failed, deferred or uncertain)."""
        setattr(self, state, getattr(self, state) + 1)


@dataclass
class Progress(Counts):
    total: int = 0


@dataclass
class Outcome(Counts):
    """What the workers did; `failures` are (address, state, reply) for every member not sent."""

    stopped: str | None = None  # why the send stopped early
    quota: bool = False
    aborted: list[str] = field(default_factory=list)  # members left uncertain by an abort (a second Ctrl+C)
    notes: list[str] = field(default_factory=list)  # what went wrong beside the send (a display that failed)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (address, state, reply)
    sent_to: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Hooks:
    """The command line's part in a send: ask before sending (given the Plan; False: nothing is sent), show
    the progress, and tell the user something while the send runs. None: nobody is asked, nothing shown."""

    confirm: Callable[[Plan], bool] | None = None
    progress: Callable[[Progress], None] | None = None
    notify: Callable[[str], None] | None = None


NO_HOOKS = Hooks()  # nobody asked, nothing shown (scripts, tests)


@dataclass(order=True)
class _Item:
    due: float
    seq: int
    recipient: Recipient = field(compare=False)
    attempt: int = field(default=0, compare=False)  # member-level 4xx so far
    drops: int = field(default=0, compare=False)  # connection lost during its transaction so far


class _Abort(Exception):
    """A second Ctrl+C: stop waiting for the transactions in progress."""


class Sender:
    """Runs the workers over the plan's recipients (streamed, in order) and returns an Outcome; the journal
    records each step, `hooks` show it, `tuning` sets the patience (limiter: SEND_RATE for the account)."""

    def __init__(self, plan: Plan, journal: JournalLike, limiter: RateLimiter, hooks: Hooks = NO_HOOKS,
                 tuning: Tuning = REAL_TUNING):
        self.settings, self.factory, self.fingerprint = plan.settings, plan.factory, plan.fingerprint
        self.journal, self.limiter, self.connect = journal, limiter, tuning.connect or Connection
        self.progress_cb, self.notify = hooks.progress, hooks.notify
        self.retry_delays, self.reconnect_delays = tuple(tuning.retry_delays), tuple(tuning.reconnect_delays)
        self.errors_log = plan.folder / SEND_ERRORS_LOG
        self.total = len(plan.recipients)
        self.outcome = Outcome()
        self.progress = Progress(total=self.total)
        self.stop = threading.Event()
        self.logged_in = threading.Event()
        self.lock = threading.Lock()
        self.cond = threading.Condition()
        self.fresh: Iterator[Recipient] = iter(plan.recipients)
        self.fresh_done = False
        self.retries: list[_Item] = []  # a heap by due time
        self.seq = itertools.count()
        self.busy = 0  # members taken and not yet settled
        self.active = 0  # workers running
        self.in_flight: dict[str, Recipient] = {}  # between `sending` and the outcome
        self.failures_in_a_row = 0
        self.interrupted: str | None = None  # the signal's name once one stopped the send
        self.stopped_at = 0.0
        self.stop_grace = STOP_GRACE
        self.uncertain_after_stop: list[str] = []
        self.done = threading.Event()

    # -- the queue ---------------------------------------------------------------------------------------

    def take(self) -> _Item | None:
        """The next member: a retry that is due, else the next fresh one, else wait for a retry; None: done."""
        with self.cond:
            while not self.stop.is_set():
                now = time.monotonic()
                if self.retries and self.retries[0].due <= now:
                    self.busy += 1
                    return heapq.heappop(self.retries)
                if not self.fresh_done:
                    recipient = next(self.fresh, None)
                    if recipient is not None:
                        self.busy += 1
                        return _Item(now, next(self.seq), recipient)
                    self.fresh_done = True
                if not self.retries and self.busy == 0:
                    self.cond.notify_all()
                    return None
                wait = self.retries[0].due - now if self.retries else 0.5
                self.cond.wait(min(max(wait, 0.01), 0.5))
            return None

    def settle(self, again: _Item | None = None) -> None:
        """The member taken is dealt with; `again` puts it (or its retry) back on the queue."""
        with self.cond:
            self.busy -= 1
            if again is not None:
                heapq.heappush(self.retries, again)
            self.cond.notify_all()

    @property
    def finished(self) -> bool:
        with self.cond:
            return self.fresh_done and not self.retries and self.busy == 0

    # -- running -----------------------------------------------------------------------------------------

    def run(self) -> Outcome:
        count = max(1, min(self.settings.send_connections, self.total))
        threads = [threading.Thread(target=self.worker, args=(n,), name=f"smtp-{n}", daemon=True)
                   for n in range(count)]
        with self.lock:
            self.active = count
        try:
            with _signals(self.interrupt), _console_events(self.console_event):
                for thread in threads:
                    thread.start()
                try:
                    for thread in threads:
                        while thread.is_alive():
                            thread.join(0.2)
                            if self.stopped_at and time.monotonic() - self.stopped_at > self.stop_grace:
                                raise _Abort(f"the server did not answer within {self.stop_grace:.0f} s of the stop")
                except _Abort as exc:
                    self.abort(str(exc))
                    return self.outcome
            if self.interrupted and (self.outcome.stopped or "").startswith("interrupted"):
                self.outcome.stopped = self.closing_line()
            if self.outcome.stopped is None and not self.finished:
                self.halt("no connection could go on sending; everyone sent so far is recorded")
            return self.outcome
        finally:
            self.done.set()

    def closing_line(self) -> str:
        """Why the send stopped after a signal, true about the messages that were in progress."""
        with self.lock:
            lost = sorted(self.uncertain_after_stop)
        if lost:
            return (f"interrupted ({self.interrupted}); {len(lost)} message(s) in progress got no answer from the "
                    f"server and are uncertain: {', '.join(lost)}")
        return f"interrupted ({self.interrupted}); the messages in progress were finished and recorded"

    def interrupt(self, signum: int) -> None:
        """A signal handler (main thread): the first one stops, every further Ctrl+C aborts at once."""
        name = _signal_name(signum)
        if self.interrupted and signum in _ABORTING:
            raise _Abort("Ctrl+C twice")
        self.request_stop(name)

    def request_stop(self, name: str) -> None:
        """Stop taking members; the messages in progress get STOP_GRACE seconds to finish (any thread)."""
        with self.lock:
            first = self.interrupted is None
            if first:
                self.interrupted, self.stopped_at = name, time.monotonic()
            waiting = len(self.in_flight)
        self.halt(f"interrupted ({name})")
        if first:
            self.call(self.notify, f"Stopping ({name}): finishing the {waiting} message(s) in progress and "
                                   "recording them" + (" (press Ctrl+C again to stop at once: those become "
                                                       "uncertain)." if waiting else "."))

    def console_event(self, event: int) -> bool:
        """A Windows console close, log-off or shut-down (on the system's thread): stop as Ctrl+C does, and wait
        for the messages in progress as long as Windows lets the process live. Other events: not ours."""
        if event not in CONSOLE_EVENTS:
            return False
        self.request_stop(CONSOLE_EVENTS[event])
        self.done.wait(CONSOLE_WAIT)
        return True

    def call(self, hook: Callable[[Any], None] | None, value: Any) -> None:
        """Call a display hook; one that fails is noted and not called again, and the send goes on."""
        if hook is None:
            return
        try:
            hook(value)
        except Exception as exc:
            with self.lock:
                self.outcome.notes.append(f"the display failed ({type(exc).__name__}: {exc}); the send went on")
                if hook is self.progress_cb:
                    self.progress_cb = None
                if hook is self.notify:
                    self.notify = None

    def abort(self, why: str) -> None:
        with self.lock:
            names = sorted(r.email for r in self.in_flight.values())
        try:
            recorded = self.journal.recover()
        except NewsletterError:
            recorded = []
        self.outcome.aborted = sorted(set(names) | set(recorded))
        self.outcome.uncertain += len(self.outcome.aborted)
        self.outcome.stopped = (f"aborted ({why}) without waiting for the server: "
                                + (f"{len(self.outcome.aborted)} member(s) are now uncertain: "
                                   + ", ".join(self.outcome.aborted) if self.outcome.aborted
                                   else "no message was in progress"))
        self.stop.set()

    def halt(self, reason: str, quota: bool = False) -> None:
        with self.lock:
            if self.outcome.stopped is None:
                self.outcome.stopped, self.outcome.quota = reason, quota
        self.stop.set()
        with self.cond:
            self.cond.notify_all()

    def worker(self, n: int) -> None:
        connection = self.connect(self.settings)
        try:
            if n > 0:  # one login per run: the others connect only once the first has logged in
                while not self.logged_in.wait(0.2):
                    if self.stop.is_set() or self.finished:
                        return
            failures = 0
            while True:
                item = self.take()
                if item is None:
                    return
                problem = self.send_one(connection, item)
                if problem is None:
                    failures = 0
                    continue
                with self.lock:
                    others = self.active > 1 and self.logged_in.is_set()
                if others and any(word in problem.reply.lower() for word in CONCURRENCY):
                    return  # too many connections for the account: go on with fewer
                if failures >= len(self.reconnect_delays):
                    self.halt(f"{problem.reply}; tried for {sum(self.reconnect_delays):.0f} s. Everyone sent so far "
                              "is recorded: run the same command again later to go on.")
                    return
                if self.stop.wait(self.reconnect_delays[failures]):
                    return
                failures += 1
        except NewsletterError as exc:
            self.halt(exc.message)
        except Exception as exc:
            self.halt(f"internal error: {type(exc).__name__}: {exc}{self.log_error(exc)}")
        finally:
            with self.lock:
                self.active -= 1
            connection.close()
            with self.cond:
                self.cond.notify_all()

    def log_error(self, exc: BaseException) -> str:
        """Append the traceback of an internal error to the edition's send-errors.log; how the message names
        it (nothing when it cannot be written: the one line is all there is then)."""
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        text = "".join(traceback.format_exception(exc))
        try:
            with self.lock, self.errors_log.open("a", encoding="utf-8") as log:
                log.write(f"--- {when}, thread {threading.current_thread().name}\n{text}\n")
        except OSError:
            return ""
        return f" (the details for a developer are in {display(self.errors_log)})"

    def going(self, recipient: Recipient, message_id: str) -> None:
        """The server said 354: from now until its reply, the outcome is unknown if this process dies."""
        self.journal.mark_sending(recipient.email, self.fingerprint, message_id)
        with self.lock:
            self.in_flight[recipient.key] = recipient

    def send_one(self, connection: Connection, item: _Item) -> Temporary | None:
        """One attempt for one member; returns the failure when it concerned the connection or the account."""
        recipient = item.recipient
        again: _Item | None = None
        try:
            if not self.limiter.acquire(self.stop):
                return None  # stopping: the member stays as it was in the journal
            # the member's Message-ID of this edition, given when the list was loaded: a retry or a re-send
            # of an uncertain one is the same message again, which mail programs fold
            message_id = self.journal.message_id(recipient.email) or self.factory.message_id()
            data = self.factory.for_recipient(recipient, message_id)
            if connection.smtp is None:
                try:
                    connection.open()
                except Temporary as exc:  # no connection: not the member's fault, it waits for the next one
                    again = _Item(time.monotonic(), next(self.seq), recipient, item.attempt, item.drops)
                    return exc
                self.logged_in.set()
            try:
                reply = connection.send(self.factory.from_address, recipient.email, data,
                                        before_data=lambda: self.going(recipient, message_id))
            except Fatal as exc:
                self.journal.mark(recipient.email, "pending", exc.reply)
                self.halt(exc.message, exc.quota)
                return None
            except ReplyLost as exc:
                self.finish(recipient, "uncertain", exc.reply)
                return None
            except Permanent as exc:
                self.finish(recipient, "failed", exc.reply)
                return None
            except Temporary as exc:
                if exc.connection and item.drops + 1 < MAX_DROPS:
                    self.journal.mark(recipient.email, "pending", exc.reply)
                    self.forget(recipient)
                    again = _Item(time.monotonic(), next(self.seq), recipient, item.attempt, item.drops + 1)
                    return exc
                if item.attempt >= len(self.retry_delays):
                    self.finish(recipient, "deferred", exc.reply)
                    return None
                self.journal.mark(recipient.email, "deferred", exc.reply)
                self.forget(recipient)
                again = _Item(time.monotonic() + self.retry_delays[item.attempt], next(self.seq), recipient,
                              item.attempt + 1, item.drops)
                return None
            self.finish(recipient, "sent", reply)
            return None
        finally:
            self.settle(again)

    def forget(self, recipient: Recipient) -> None:
        with self.lock:
            self.in_flight.pop(recipient.key, None)

    def finish(self, recipient: Recipient, state: str, reply: str) -> None:
        """Record a member's outcome for this run (journal first, then the counts and the progress bar)."""
        self.journal.mark(recipient.email, state, reply)
        with self.lock:
            self.in_flight.pop(recipient.key, None)
            out = self.outcome
            out.add(state)
            self.progress.add(state)
            if state == "sent":
                out.sent_to.append(recipient.email)
                self.failures_in_a_row = 0
            else:
                if state == "uncertain" and self.stop.is_set():
                    self.uncertain_after_stop.append(recipient.email)
                out.failures.append((recipient.email, state, reply))
                if state == "failed":
                    self.failures_in_a_row += 1
            snapshot = Progress(**vars(self.progress))
            too_many = self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW
        if too_many:
            self.halt(f"{MAX_FAILURES_IN_A_ROW} messages in a row were refused (last: {reply}); stopped so as not "
                      "to harm the sender's reputation. Those members are marked failed and are not sent again "
                      "without --retry-failed: check `newsletter status`, fix the cause, then run the same command "
                      "with --retry-failed.")
        self.call(self.progress_cb, snapshot)


def _signal_name(signum: int) -> str:
    if signum == signal.SIGINT:
        return "Ctrl+C"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


_ABORTING = tuple(getattr(signal, name) for name in ("SIGINT", "SIGBREAK") if hasattr(signal, name))


@contextmanager
def _console_events(handler: Callable[[int], bool]) -> Iterator[None]:
    """On Windows, `handler` hears of the console window closing, logging off and shutting down while sending
    (SetConsoleCtrlHandler: Python's signals do not cover them). Elsewhere nothing changes."""
    if not WINDOWS:
        yield
        return
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    routine = ctypes.WINFUNCTYPE(ctypes.c_int, ctypes.c_uint)(  # type: ignore[attr-defined,unused-ignore]
        lambda event: 1 if handler(int(event)) else 0)
    added = bool(kernel32.SetConsoleCtrlHandler(routine, 1))
    try:
        yield
    finally:
        if added:
            kernel32.SetConsoleCtrlHandler(routine, 0)


@contextmanager
def _signals(handler: Callable[[int], None]) -> Iterator[None]:
    """SIGINT, SIGTERM, SIGHUP (where it exists) and Ctrl+Break (Windows) call `handler` while sending.

    Only the main thread can install handlers; elsewhere (a test's thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
    wanted = [getattr(signal, name) for name in names if hasattr(signal, name)]
    previous: dict[int, Any] = {}
    for signum in wanted:
        previous[signum] = signal.signal(signum, lambda number, _frame: handler(number))
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
