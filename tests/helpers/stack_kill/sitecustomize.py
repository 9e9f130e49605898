"""Test-only: with ``IMBLOSS_TEST_KILL_AFTER_STACK_EPOCHS=N`` set and this folder on PYTHONPATH,
the process SIGKILLs itself right after a stacked pass saved its state of N epochs done — a real
interruption of a stacked multirun (``tests/test_stacked_resume.py``). Without the variable it
does nothing."""

import os
import signal

KILL_AFTER = os.environ.get("IMBLOSS_TEST_KILL_AFTER_STACK_EPOCHS")

if KILL_AFTER is not None:
    from pathlib import Path

    import imbloss.stacked.state as state_module

    write = state_module.write_stack_state

    def write_then_kill(path: Path, state: state_module.StackState, members: list[int]) -> None:
        """Write the state; SIGKILL this process if it is that of ``KILL_AFTER`` epochs."""
        write(path, state, members)
        if state.epochs_done == int(KILL_AFTER):
            os.kill(os.getpid(), signal.SIGKILL)

    state_module.write_stack_state = write_then_kill
