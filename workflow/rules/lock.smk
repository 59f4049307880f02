# Resuming after a kill. Snakemake locks the working directory while a run goes on; a run
# killed with SIGKILL leaves that lock behind, and the same command would then be refused
# ("Directory cannot be locked"). The running run records its host and process id; when
# that process is gone, the next invocation releases the lock, so re-running the command
# resumes. A live run keeps its lock: a concurrent invocation is still refused.
import json
import os
import socket
import sys
from pathlib import Path

RUN_RECORD = Path(".snakemake/gclvad-running.json")


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_stale_lock():
    locks = Path(".snakemake/locks")
    if not RUN_RECORD.exists() or not any(locks.glob("*")):
        return
    holder = json.loads(RUN_RECORD.read_text())
    if holder["host"] != socket.gethostname() or process_alive(holder["pid"]):
        return
    for lock in locks.glob("*"):
        lock.unlink()
    RUN_RECORD.unlink()
    print(
        f"gclvad: released the lock of a run that no longer exists (pid {holder['pid']})",
        file=sys.stderr,
    )


release_stale_lock()


onstart:
    RUN_RECORD.write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid()})
    )


onsuccess:
    RUN_RECORD.unlink(missing_ok=True)


onerror:
    RUN_RECORD.unlink(missing_ok=True)
