"""CPU time and memory of a server process and its descendants, read from Linux /proc."""

import os
import threading
import time

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# Flag bit in /proc/<pid>/stat that marks a kernel thread (PF_KTHREAD in the kernel sources).
PF_KTHREAD = 0x00200000


def tree_pids(pid):
    """Return `pid` and the ids of all its live descendants."""
    pids = [pid]
    index = 0
    while index < len(pids):
        current = pids[index]
        index += 1
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pids.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def _status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree_rss_bytes(pid):
    """Return the summed resident set size (VmRSS) of `pid` and its descendants."""
    return sum(_status_kib(member, "VmRSS") for member in tree_pids(pid)) * 1024


def tree_hwm_bytes(pid):
    """Return the summed peak resident set size (VmHWM) of `pid` and its descendants since they started."""
    return sum(_status_kib(member, "VmHWM") for member in tree_pids(pid)) * 1024


def system_busy_cpu_seconds():
    """Return the CPU time all cores have spent outside idle and I/O wait since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    # cpu user nice system idle iowait irq softirq steal: guest time is already inside user and nice.
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_SECOND


def _read_stat_fields(pid):
    """Return the /proc/<pid>/stat fields after the command name (field 3 is index 0), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_process_cpu_seconds():
    """Return {pid: (user plus system CPU seconds, whether it is a kernel thread)} for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _read_stat_fields(name)
        if fields is None:
            continue
        # flags, utime and stime are fields 9, 14 and 15.
        is_kernel_thread = bool(int(fields[6]) & PF_KTHREAD)
        table[int(name)] = ((int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND, is_kernel_thread)
    return table


class CpuWindow:
    """CPU use between `start()` and `stop()`, split by who used it.

    `stop()` returns cores (CPU seconds per wall-clock second) for the server tree, the
    benchmark's own processes, other user-space processes, and the kernel (kernel threads,
    interrupts and soft interrupts: loopback networking and filesystem journaling land here).
    CPU time of processes that exit inside the window is not seen.
    """

    def __init__(self, server_pid, client_pids):
        self.server_pid = server_pid
        self.client_pids = set(client_pids)
        self._start = None

    @staticmethod
    def _snapshot():
        return time.monotonic(), system_busy_cpu_seconds(), all_process_cpu_seconds()

    def start(self):
        self._start = self._snapshot()

    def stop(self):
        started, busy_start, table_start = self._start
        ended, busy_end, table_end = self._snapshot()
        elapsed = ended - started
        server_pids = set(tree_pids(self.server_pid))

        used = {"server": 0.0, "client": 0.0, "other_processes": 0.0, "kernel_threads": 0.0}
        for pid, (cpu_end, is_kernel_thread) in table_end.items():
            cpu_start = table_start.get(pid, (0.0, False))[0]
            delta = max(0.0, cpu_end - cpu_start)
            if pid in server_pids:
                used["server"] += delta
            elif pid in self.client_pids:
                used["client"] += delta
            elif is_kernel_thread:
                used["kernel_threads"] += delta
            else:
                used["other_processes"] += delta
        user_space = used["server"] + used["client"] + used["other_processes"]
        kernel = max(0.0, (busy_end - busy_start) - user_space)
        return {
            "server_cpu_cores": used["server"] / elapsed,
            "client_cpu_cores": used["client"] / elapsed,
            "other_processes_cpu_cores": used["other_processes"] / elapsed,
            "kernel_cpu_cores": kernel / elapsed,
        }


def wait_until_idle(max_wait_seconds, busy_threshold_cores=0.15, quiet_seconds=30, interval_seconds=5):
    """Wait until the whole machine used under `busy_threshold_cores` for `quiet_seconds` in a row.

    Returns the seconds waited, or None if the machine was still busy after `max_wait_seconds`.
    """
    started = time.monotonic()
    quiet = 0.0
    while True:
        busy_start = system_busy_cpu_seconds()
        time.sleep(interval_seconds)
        busy_cores = (system_busy_cpu_seconds() - busy_start) / interval_seconds
        quiet = quiet + interval_seconds if busy_cores < busy_threshold_cores else 0.0
        waited = time.monotonic() - started
        if quiet >= quiet_seconds:
            return waited
        if waited >= max_wait_seconds:
            return None


def load_average():
    """Return the 1-minute load average."""
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


class RssSampler:
    """Background thread that samples the summed VmRSS of a process tree at a fixed interval."""

    def __init__(self, pid, interval_seconds=0.1):
        self.pid = pid
        self.interval_seconds = interval_seconds
        self.peak_bytes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self.pid))
            self.samples += 1
            self._stop.wait(self.interval_seconds)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        # One last sample so that a short run still records its final state.
        self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self.pid))

