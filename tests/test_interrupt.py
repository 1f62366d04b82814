"""Ctrl-C ends a script with exit code 130 and its one line, even where Python swallows it."""
from __future__ import annotations

import os
import signal

import pytest

from coop.utils.errors import EXIT_INTERRUPTED, cli


@pytest.fixture(autouse=True)
def ctrl_c_as_python_starts():
    """Python's own handler, as in a foreground process (pytest run as a background job inherits an
    ignored SIGINT, which cli() rightly keeps)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one
def test_a_ctrl_c_swallowed_inside_a_finaliser_still_ends_the_script(capsys):
    """A KeyboardInterrupt raised while a __del__ runs (a DataLoader's workers shutting down between two
    runs) is printed as "Exception ignored" and lost; cli() remembers it and ends as interrupted."""
    went_on = []

    class Finaliser:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # the handler runs at one of these bytecodes, inside __del__
                pass

    def main(argv=None):
        Finaliser()  # dropped at once: its __del__ runs and swallows the interrupt
        went_on.append(True)
        return 0

    before = signal.getsignal(signal.SIGINT)
    assert cli(main)([]) == EXIT_INTERRUPTED
    assert went_on  # the interrupt was indeed swallowed: main ran to its end
    assert "interrupted: finished results are kept" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


def test_a_ctrl_c_in_plain_code_ends_at_once(capsys):
    went_on = []

    def main(argv=None):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):
            pass
        went_on.append(True)
        return 0

    assert cli(main)([]) == EXIT_INTERRUPTED and not went_on
    assert capsys.readouterr().err.count("interrupted") == 1


def test_an_inherited_ignore_of_ctrl_c_is_kept():
    """A background job of a shell script starts with SIGINT ignored; cli() leaves that as it is."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        def main(argv=None):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):
                pass
            return 0

        assert cli(main)([]) == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_reader_that_stops_early_ends_the_script_quietly(capsys):
    """run_all --print-commands | head -n 1: the closed pipe is no error line, and the exit code is a
    SIGPIPE's, as any Unix tool's there."""
    def main(argv=None):
        raise BrokenPipeError(32, "Broken pipe")

    assert cli(main)([]) == 141
    assert capsys.readouterr().err == ""
