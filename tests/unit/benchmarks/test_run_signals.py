"""A bench stopped with SIGTERM (or Ctrl-C) stops: its coroutine is cancelled, its
``finally`` blocks run (they stop the nodes), and it ends with KeyboardInterrupt.

The signal is raised from inside a transport's callback, where it arrived when the bench
ran on after a SIGTERM: the old handler raised KeyboardInterrupt there, and uvloop took it
for that connection's fatal error. In a process of its own: the signal is real.
"""

from __future__ import annotations

import subprocess
import sys

_STOPPED_IN_A_CALLBACK = """
import asyncio, os, signal
from benchmarks.run import run_async
from cli.interrupt import raise_interrupt

signal.signal(signal.SIGTERM, raise_interrupt)  # as `cityledger bench` sets it

class SignalledWhileReading(asyncio.Protocol):
    def data_received(self, data):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs here, inside the loop's callback
            pass

async def bench():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SignalledWhileReading, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"x")
    try:
        await asyncio.sleep(20)
        print("ran on", flush=True)
    finally:
        print("finally ran", flush=True)
        writer.close()
        server.close()

try:
    run_async(bench())
except KeyboardInterrupt:
    print("interrupted", flush=True)
print("handler kept", signal.getsignal(signal.SIGTERM) is raise_interrupt, flush=True)
"""


def test_sigterm_in_a_transport_callback_cancels_the_bench_and_runs_its_cleanup() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _STOPPED_IN_A_CALLBACK],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.splitlines() == ["finally ran", "interrupted", "handler kept True"]


_FINISHES = """
import asyncio, signal
from benchmarks.run import run_async
from cli.interrupt import raise_interrupt

signal.signal(signal.SIGTERM, raise_interrupt)
# as Python starts when SIGINT is not ignored (a shell's background job inherits it ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)

async def bench():
    await asyncio.sleep(0)
    return 42

print(run_async(bench()), signal.getsignal(signal.SIGTERM) is raise_interrupt)
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""


def test_a_bench_without_a_signal_returns_its_result_and_keeps_the_handlers() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FINISHES], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.splitlines() == ["42 True", "True"]
