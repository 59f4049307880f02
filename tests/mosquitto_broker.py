"""A throwaway Mosquitto MQTT broker for tests (Debian's `mosquitto`, .ci/install-mosquitto.sh).

`Broker(folder, port)` writes its own config file (one listener on 127.0.0.1:PORT, no
persistence, log to a file in `folder`), `start()` runs mosquitto on it and waits until the
port accepts connections, `stop()` ends that process by its id. `gate()` starts it so that
only the test's own user (name and password in a password file) may connect, and `open()`
then lets everyone in (anonymous clients: the sink under test) by rewriting the config and
sending the broker SIGHUP, which makes it reread it: a test can have its subscriber
connected before the sink gets back in.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

TEST_USER, TEST_PASSWORD = "tester", "tester-password"


def mosquitto_binary() -> str | None:
    """The broker program (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    def __init__(self, folder: Path, port: int):
        self.folder, self.port = Path(folder), port
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = self.folder / "mosquitto.conf"
        self.log = self.folder / "mosquitto.log"
        self.passwords = self.folder / "passwords"
        self.process: subprocess.Popen | None = None

    def _write_config(self, anonymous: bool) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if anonymous else 'false'}",
            "persistence false",
            # as root, mosquitto would switch to user mosquitto, who cannot read the test's folder
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"log_dest file {self.log}",
            "log_type all",
        ]
        if not anonymous:
            lines.append(f"password_file {self.passwords}")
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, anonymous: bool = True, timeout_s: float = 10.0) -> Broker:
        self._write_config(anonymous)
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start on port {self.port}; see {self.log}")
            time.sleep(0.05)
        return self

    def gate(self) -> Broker:
        """Start it with only TEST_USER allowed in."""
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(self.passwords), TEST_USER, TEST_PASSWORD],
            check=True,
            capture_output=True,
        )
        return self.start(anonymous=False)

    def open(self) -> None:
        """Let anonymous clients in too (the config is reread on SIGHUP)."""
        self._write_config(anonymous=True)
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Kill the broker (SIGKILL: like a crash, no goodbye to the clients) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
