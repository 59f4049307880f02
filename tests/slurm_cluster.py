"""A throwaway single-node SLURM cluster for tests, and Snakemake runs against it.

`start_cluster()` builds a complete SLURM cluster from the Debian packages that
.ci/install-slurm.sh installs: its own munged (generated key, own socket),
slurmctld and slurmd, with every config, state, spool, log and socket file in one
fresh temp dir and free TCP ports, so several runs can coexist on one host and
nothing under /etc or /run is touched. The node offers one `gpu` GRES backed by
/dev/null, so jobs can request GPUs on a machine without one. There is no
accounting database: job state comes from slurmctld (`squeue`, `scontrol`),
which keeps finished jobs for MinJobAge seconds.

`SlurmCluster.stop()` cancels the cluster's jobs, stops the daemons and removes
the temp dir; every process the cluster spawned carries a marker variable in its
environment, so leftovers (slurmstepd, job shells) are found and killed by pid.

`run_snakemake_on_slurm()` runs `snakemake --workflow-profile profiles/slurm` as a
client of such a cluster, with a hard timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO_ROOT / "profiles" / "slurm"
DEFAULT_PROFILE = REPO_ROOT / "profiles" / "default"

# Daemons and client commands the cluster needs (Debian: munge, slurmctld,
# slurmd, slurm-client).
REQUIRED_BINARIES = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sinfo",
    "scontrol",
    "scancel",
)
# Client commands that get a SLURM_CONF-pinning wrapper (see _write_client_wrappers).
CLIENT_COMMANDS = ("srun", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "sacct")
PARTITION = "main"
# Every process started for a cluster inherits this variable (value: the
# cluster's root dir), which is how stop() finds what the daemons left behind.
MARKER_VARIABLE = "GCLVAD_TEST_SLURM_CLUSTER"
# Finished jobs stay visible to `squeue --states=all` this long; the SLURM
# executor plugin only trusts squeue for status when this is >= 3 times its
# first status-check delay.
MIN_JOB_AGE_S = 300
# The delay run_snakemake_on_slurm() asks the plugin for (default 40 s, which
# would make a small test workflow wait mostly idle).
TEST_STATUS_CHECK_DELAY_S = 2

_PR_SET_PDEATHSIG = 1


class SlurmClusterError(RuntimeError):
    """The test cluster could not be started, or a command against it failed."""


def missing_binaries() -> list[str]:
    """Names in REQUIRED_BINARIES that are not on PATH."""
    return [name for name in REQUIRED_BINARIES if shutil.which(name) is None]


def unavailable_reason() -> str | None:
    """Why this machine cannot run a test cluster, or None when it can."""
    missing = missing_binaries()
    if missing:
        return f"SLURM/munge binaries not on PATH: {', '.join(missing)} (install them with .ci/install-slurm.sh)"
    if os.geteuid() != 0:
        # slurmd must be root to start job steps as the submitting user.
        return "the test SLURM cluster must run as root (slurmd launches job steps)"
    return None


def _free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that are free now (all held open until chosen)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _die_with_parent() -> None:
    """Runs in each daemon before exec: SIGTERM it if the test process dies."""
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _node_hardware() -> dict[str, str]:
    """This host's CPU/board/memory layout as `slurmd -C` reports it."""
    report = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True, timeout=30).stdout
    first_line = report.splitlines()[0]
    fields = dict(item.split("=", 1) for item in first_line.split())
    wanted = (
        "NodeName",
        "CPUs",
        "Boards",
        "SocketsPerBoard",
        "CoresPerSocket",
        "ThreadsPerCore",
        "RealMemory",
    )
    missing = [key for key in wanted if key not in fields]
    if missing:
        raise SlurmClusterError(
            f"`slurmd -C` printed no {', '.join(missing)}; expected a NodeName=... line, found: {first_line!r}"
        )
    return {key: fields[key] for key in wanted}


def _slurm_conf(root: Path, node: dict[str, str], ctld_port: int, slurmd_port: int) -> str:
    host = node["NodeName"]
    hardware = " ".join(f"{key}={node[key]}" for key in list(node)[1:])
    return f"""\
# Written by tests/slurm_cluster.py for one test session.
ClusterName=gclvadtest{ctld_port}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Our own munged, not the host's /run/munge socket.
AuthInfo=socket={root / "munge" / "munge.socket"}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool" / "slurmd.%n"}
SlurmctldPidFile={root / "run" / "slurmctld.pid"}
SlurmdPidFile={root / "run" / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
# No systemd/cgroups here: track job processes through /proc, confine nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# No slurmdbd: no accounting, no job accounting gathering.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
MinJobAge={MIN_JOB_AGE_S}
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName={host} NodeAddr=127.0.0.1 {hardware} Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    """A running test cluster; `env` is what client commands need to reach it."""

    root: Path
    conf: Path
    node: str
    env: dict[str, str]
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def partition(self) -> str:
        return PARTITION

    def client_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) without inherited SLURM job variables, plus env."""
        merged = {
            key: value
            for key, value in (os.environ if base is None else base).items()
            if not key.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))
        }
        merged.update(self.env)
        return merged

    def run(self, *command: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        """Runs a SLURM client command (squeue, scontrol, ...) against this cluster."""
        result = subprocess.run(
            list(command),
            env=self.client_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise SlurmClusterError(
                f"`{' '.join(command)}` exited {result.returncode}: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def job_record(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` fields of one job still known to slurmctld."""
        line = self.run("scontrol", "show", "job", "--oneliner", job_id).stdout.strip()
        return dict(item.split("=", 1) for item in line.split() if "=" in item)

    def node_state(self) -> str:
        return self.run("sinfo", "--noheader", "--nodes", self.node, "--format=%T").stdout.strip()

    def log(self, daemon: str) -> str:
        """Contents of the log of `daemon` ("slurmctld", "slurmd" or "munged")."""
        path = self.root / "log" / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def diagnostics(self, tail_lines: int = 40) -> str:
        """The end of every daemon log, for failure messages."""
        parts = []
        for daemon in ("munged", "slurmctld", "slurmd"):
            tail = "\n".join(self.log(daemon).splitlines()[-tail_lines:])
            parts.append(f"--- {daemon}.log (last {tail_lines} lines) ---\n{tail}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancels all jobs, stops the daemons and their leftovers, deletes the files."""
        if self.daemons.get("slurmctld") and self.daemons["slurmctld"].poll() is None:
            self._cancel_all_jobs()
        # Reverse start order: slurmd, slurmctld, then munged, which they need.
        for name in reversed(list(self.daemons)):
            _terminate(self.daemons[name])
        for pid in _pids_with_marker(str(self.root)):
            _kill_pid(pid)
        self.daemons.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def _cancel_all_jobs(self) -> None:
        try:
            self.run("scancel", "--user", str(os.geteuid()), check=False, timeout=15)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                active = self.run(
                    "squeue",
                    "--noheader",
                    "--format=%i",
                    "--states=PENDING,RUNNING,COMPLETING",
                    check=False,
                    timeout=15,
                ).stdout.split()
                if not active:
                    return
                time.sleep(0.5)
        except subprocess.TimeoutExpired:
            pass  # the daemons are killed next anyway


def _terminate(process: subprocess.Popen, grace_s: float = 10) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)


def _pids_with_marker(root: str) -> list[int]:
    """Processes whose environment says they belong to the cluster at `root`."""
    needle = f"{MARKER_VARIABLE}={root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile, or a kernel thread
        if needle in environment:
            found.append(int(entry.name))
    return found


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _start_daemon(cluster: SlurmCluster, name: str, command: Sequence[str]) -> None:
    log_path = cluster.root / "log" / f"{name}.console"
    with open(log_path, "ab") as console:
        cluster.daemons[name] = subprocess.Popen(
            list(command),
            env=cluster.client_env(),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )


def _wait_until(what: str, condition, cluster: SlurmCluster, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, process in cluster.daemons.items():
            if process.poll() is not None:
                console = (cluster.root / "log" / f"{name}.console").read_text(errors="replace")
                raise SlurmClusterError(
                    f"{name} exited with {process.returncode} while waiting for {what}.\n"
                    f"console: {console[-2000:]}\n{cluster.diagnostics()}"
                )
        if condition():
            return
        time.sleep(0.3)
    raise SlurmClusterError(f"timed out after {timeout_s} s waiting for {what}\n{cluster.diagnostics()}")


def _write_munge_key(path: Path) -> None:
    # munged accepts any key of 32..1024 random bytes; owner-only permissions.
    path.write_bytes(os.urandom(1024))
    path.chmod(0o400)


def _write_client_wrappers(root: Path, conf: Path) -> Path:
    """Puts `srun`, `sbatch`, ... wrappers that pin SLURM_CONF into root/bin.

    Inside a job, snakemake-executor-plugin-slurm-jobstep (0.6.1) starts each
    rule with a nested `srun` whose environment keeps only a few SLURM_*
    variables, dropping SLURM_CONF. A real cluster's srun then finds
    /etc/slurm/slurm.conf; ours has its config in the temp dir, so the wrappers,
    which jobs find first on PATH (sbatch --export=ALL), restore it.
    """
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for client in CLIENT_COMMANDS:
        real = shutil.which(client)
        if real is None:
            continue  # optional ones (sacct) may be missing
        wrapper = bin_dir / client
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec "{real}" "$@"\n')
        wrapper.chmod(0o755)
    return bin_dir


def start_cluster(parent: Path | None = None, timeout_s: float = 60) -> SlurmCluster:
    """Starts munged, slurmctld and slurmd in a fresh dir; returns once the node is idle.

    The cluster's files go to a new dir under `parent` (default: the system temp
    dir; keep it short, unix socket paths are limited to 107 bytes). Raises
    SlurmClusterError with the daemon logs when a daemon dies or the node does
    not become idle within `timeout_s`.
    """
    reason = unavailable_reason()
    if reason:
        raise SlurmClusterError(reason)
    root = Path(tempfile.mkdtemp(prefix="slurm-", dir=parent))
    try:
        cluster = _prepare(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        _start_all(cluster, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _prepare(root: Path) -> SlurmCluster:
    """Writes the cluster's config files into `root`; starts nothing."""
    root.chmod(0o700)  # munged refuses key/socket dirs that others can write to
    for sub in ("munge", "state", "spool", "run", "log"):
        (root / sub).mkdir(mode=0o700)
    node = _node_hardware()
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, node, *_free_ports(2)))
    # /dev/null stands in for the GPU device file: SLURM only counts and hands
    # out the GRES; nothing opens the device.
    (root / "gres.conf").write_text(f"NodeName={node['NodeName']} Name=gpu File=/dev/null\n")
    bin_dir = _write_client_wrappers(root, conf)
    return SlurmCluster(
        root=root,
        conf=conf,
        node=node["NodeName"],
        env={
            "SLURM_CONF": str(conf),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            MARKER_VARIABLE: str(root),
        },
    )


def _start_all(cluster: SlurmCluster, timeout_s: float) -> None:
    root = cluster.root
    socket_path = root / "munge" / "munge.socket"
    _write_munge_key(root / "munge" / "munge.key")
    _start_daemon(
        cluster,
        "munged",
        [
            "munged",
            "--foreground",
            "--force",
            f"--socket={socket_path}",
            f"--key-file={root / 'munge' / 'munge.key'}",
            f"--pid-file={root / 'run' / 'munged.pid'}",
            f"--seed-file={root / 'munge' / 'munged.seed'}",
            f"--log-file={root / 'log' / 'munged.log'}",
        ],
    )
    _wait_until("munged's socket", socket_path.exists, cluster, timeout_s)
    _start_daemon(cluster, "slurmctld", ["slurmctld", "-D", "-i", "-f", str(cluster.conf)])
    _wait_until(
        "slurmctld to answer",
        lambda: cluster.run("scontrol", "ping", check=False, timeout=10).stdout.count("UP") > 0,
        cluster,
        timeout_s,
    )
    _start_daemon(cluster, "slurmd", ["slurmd", "-D", "-N", cluster.node, "-f", str(cluster.conf)])
    _wait_until("the node to be idle", lambda: cluster.node_state() == "idle", cluster, timeout_s)


def _snakemake_command() -> list[str]:
    return [sys.executable, "-m", "snakemake"]


def _run_bounded(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Runs `command` in its own process group; kills the whole group on timeout."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        raise SlurmClusterError(
            f"`{' '.join(command)}` did not finish within {timeout} s; output:\n{output[-6000:]}"
        ) from None
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def run_snakemake_on_slurm(
    cluster: SlurmCluster,
    workdir: Path,
    targets: Iterable[str],
    extra_args: Sequence[str] = (),
    timeout: float = 300,
    snakefile: Path | None = None,
    profile: Path = SLURM_PROFILE,
) -> subprocess.CompletedProcess:
    """Runs snakemake with `profile` (the repo's SLURM profile) as a client of `cluster`.

    Runs in `workdir` (also --directory); `snakefile` defaults to workdir/Snakefile.
    Status checks start after TEST_STATUS_CHECK_DELAY_S instead of the profile's
    delay, and SLURM logs of successful jobs are kept (.snakemake/slurm_logs).
    Returns the finished process (stdout holds stdout+stderr) whatever its exit
    status; raises SlurmClusterError when it runs past `timeout` seconds, after
    killing its process group.
    """
    # Targets first: an option taking several values (--group-components ...)
    # at the end of extra_args would otherwise swallow them.
    command = [
        *_run_command(workdir, targets, profile),
        *("--slurm-init-seconds-before-status-checks", str(TEST_STATUS_CHECK_DELAY_S)),
        "--slurm-keep-successful-logs",
    ]
    if snakefile is not None:
        command += ["--snakefile", str(snakefile)]
    command += list(extra_args)
    return _run_bounded(command, workdir, cluster.client_env(), timeout)


def _run_command(workdir: Path, targets: Iterable[str], profile: Path) -> list[str]:
    """Snakemake on `targets` in `workdir` with `profile`; targets first, as explained above."""
    return [*_snakemake_command(), *targets, "--workflow-profile", str(profile), "--directory", str(workdir)]


def run_snakemake_locally(
    workdir: Path,
    targets: Iterable[str],
    extra_args: Sequence[str] = (),
    timeout: float = 300,
    snakefile: Path | None = None,
    profile: Path = DEFAULT_PROFILE,
) -> subprocess.CompletedProcess:
    """The same run as run_snakemake_on_slurm() but with the local `profile`."""
    command = _run_command(workdir, targets, profile)
    if snakefile is not None:
        command += ["--snakefile", str(snakefile)]
    command += list(extra_args)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    return _run_bounded(command, workdir, env, timeout)


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


@pytest.fixture(scope="session")
def slurm_test_cluster() -> Iterator[SlurmCluster]:
    """One test cluster for the whole session, stopped and deleted at its end.

    Skips when this machine cannot run one (no SLURM binaries, not root), except
    in CI (CI=true), where that is a failure: CI installs them with
    .ci/install-slurm.sh.
    """
    reason = unavailable_reason()
    if reason:
        if _running_in_ci():
            pytest.fail(f"CI=true but no test SLURM cluster possible: {reason}")
        pytest.skip(reason)
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


if __name__ == "__main__":
    # Manual check: start a cluster, show it, stop it.
    started = time.monotonic()
    test_cluster = start_cluster()
    try:
        print(f"started in {time.monotonic() - started:.1f} s at {test_cluster.root}")
        print(test_cluster.run("sinfo").stdout)
    finally:
        test_cluster.stop()
