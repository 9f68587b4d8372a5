"""Writes the Markdown report of benches/run.sh from the tab-separated files
that the script leaves in its work folder.

Usage: python3 benches/report.py WORK_FOLDER MODE

Every figure comes from those files; this script only formats them and
computes the ratios and the comparison with the targets.
"""

import os
import platform
import subprocess
import sys

# The names of the systems in the tables, by the keys that benches/run.sh records.
SYSTEMS = {
    "gateway": "gateway",
    "candidate": "gateway-candidate",
    "native": "native-proxy",
    "approuter": "approuter",
    "wasmtime": "wasmtime-serve",
}

# Targets of the design.
SANDBOX_MEDIAN_US = 20.0
NATIVE_RATIO = 0.7
APPROUTER_RATIO = 5.0
IDLE_MEMORY_MB = 40.0


def rows(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as file:
        return [line.rstrip("\n").split("\t") for line in file if line.strip()]


def command_output(*command):
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "not installed"


def machine():
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as file:
        for line in file:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as file:
        total_kib = int(file.readline().split()[1])
    return f"{os.cpu_count()} CPUs ({model}), {total_kib / 1024 / 1024:.1f} GiB memory, Linux {platform.release()}"


def mb(kib):
    return f"{int(kib) * 1024 / 1e6:.1f}"


def ms(micros):
    return f"{int(micros) / 1000:.2f}"


def table(header, body):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in body]
    return "\n".join(lines)


def sandbox_section(folder):
    body = []
    for case, crit_median, crit_p99, timer_median, timer_p99, instructions in rows(folder, "sandbox.tsv"):
        component = "default gateway component" if case == "default" else "tests/guests/versioned"
        body.append([component, crit_median, crit_p99, timer_median, timer_p99, instructions])
    header = [
        "component, GET /",
        "Criterion median (µs)",
        "Criterion p99 of sample means (µs)",
        "timer median (µs)",
        "timer p99 (µs)",
        "instructions per request (callgrind)",
    ]
    return table(header, body)


def load_section(folder):
    body = []
    for system, response, connections, rps, p50, p99, errors, cpu in rows(folder, "load.tsv"):
        name = SYSTEMS[system]
        if rps == "not installed":
            body.append([name, response, "-", "not installed", "-", "-", "-", "-"])
            continue
        body.append([name, response, connections, f"{float(rps):.0f}", ms(p50), ms(p99), errors, cpu])
    header = ["system", "response", "connections", "requests/s", "p50 (ms)", "p99 (ms)", "errors", "CPU of the system per request (µs)"]
    return table(header, body)


def throughput(folder):
    """Maps (system, response, connections) to requests per second."""
    return {
        (system, response, connections): float(rps)
        for system, response, connections, rps, *_ in rows(folder, "load.tsv")
        if rps != "not installed"
    }


def error_statuses_text(folder):
    """Returns a sentence that lists the error statuses in the gateways' request logs."""
    found = rows(folder, "error-statuses.tsv")
    if not found:
        return "The gateway's request log shows no response with a status of 400 or above, apart from the 404 responses of `root`."
    counts = ", ".join(f"{count} × {status} ({SYSTEMS[system]})" for system, status, count in found)
    return f"Responses with a status of 400 or above in the request logs, apart from the 404 responses of `root`: {counts}."


def ratio_section(folder):
    rates = throughput(folder)
    body = []
    for (system, response, connections), rps in rates.items():
        if system not in ("gateway", "candidate"):
            continue
        cells = [SYSTEMS[system], response, connections]
        for other in ("native", "approuter", "wasmtime"):
            rate = rates.get((other, response, connections))
            cells.append(f"{rps / rate:.2f}" if rate else "-")
        body.append(cells)
    header = ["system", "response", "connections", "/ native-proxy", "/ approuter", "/ wasmtime-serve"]
    return table(header, body)


def memory_section(folder):
    body = [[state, mb(rss), mb(hwm)] for state, rss, hwm in rows(folder, "memory.tsv")]
    return table(["process and state", "VmRSS (MB)", "VmHWM (MB)"], body)


def start_section(folder):
    return table(["measurement", "value"], rows(folder, "start.tsv"))


def destination_section(folder):
    body = []
    for _, connections, rps, p99, errors, lookups, tokens in rows(folder, "destination.tsv"):
        body.append(["gateway, Destination service", connections, f"{float(rps):.0f}", ms(p99), errors, lookups, tokens])
    header = ["system", "connections", "requests/s", "p99 (ms)", "errors", "destination lookups", "token requests"]
    return table(header, body)


def connections_text(connections):
    return f"{connections} connection" + ("" if connections == "1" else "s")


def verdict(met):
    return "met" if met else "missed"


def targets_section(folder):
    body = []
    for case, crit_median, *_ in rows(folder, "sandbox.tsv"):
        if case == "default":
            median = float(crit_median)
            body.append([f"sandbox cost under {SANDBOX_MEDIAN_US:.0f} µs median", f"{median:.1f} µs", verdict(median < SANDBOX_MEDIAN_US)])
    rates = throughput(folder)
    for (system, response, connections), rps in rates.items():
        if system != "gateway" or response != "small":
            continue
        native = rates.get(("native", response, connections))
        approuter = rates.get(("approuter", response, connections))
        if native:
            body.append([f"at least {NATIVE_RATIO} × native-proxy, small, {connections_text(connections)}", f"{rps / native:.2f} ×", verdict(rps / native >= NATIVE_RATIO)])
        if approuter:
            body.append([f"at least {APPROUTER_RATIO:.0f} × approuter, small, {connections_text(connections)}", f"{rps / approuter:.2f} ×", verdict(rps / approuter >= APPROUTER_RATIO)])
    for state, rss, _ in rows(folder, "memory.tsv"):
        if state == "gateway idle after start":
            value = int(rss) * 1024 / 1e6
            body.append([f"idle memory under {IDLE_MEMORY_MB:.0f} MB (VmRSS)", f"{value:.1f} MB", verdict(value < IDLE_MEMORY_MB)])
    for measurement, value in rows(folder, "start.tsv"):
        if measurement.startswith("failed requests during"):
            body.append(["zero failed requests during swaps", value, verdict(value == "0")])
    return table(["target", "measured", "result"], body)


def main():
    folder, mode = sys.argv[1], sys.argv[2]
    approuter_version = command_output(
        "node", "-p", 'require("./benches/approuter/node_modules/@sap/approuter/package.json").version'
    )
    versions = [
        command_output("rustc", "--version"),
        f"Node.js {command_output('node', '--version')}",
        command_output("sh", "-c", "wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2"),
        f"@sap/approuter {approuter_version}",
    ]
    with open(os.path.join(folder, "settings.txt"), encoding="utf-8") as file:
        settings = file.read().strip()
    sections = [
        f"# Benchmark results ({mode})",
        f"Measured on this machine in one run of `benches/run.sh{' --smoke' if mode == 'smoke' else ''}`: {machine()}.",
        f"Versions: {', '.join(versions)}. {settings}",
        "## Sandbox cost per request",
        sandbox_section(folder),
        "Criterion's samples each time a batch of requests, so its p99 is the 99th percentile "
        "of batch means; the timer measures each request alone. Callgrind counts the user-space "
        "instructions of the measured loop only, divided by its requests.",
        "## Throughput and latency",
        load_section(folder),
        "`root` is `GET /` without a backend, to which the default component responds with 404 "
        "by design, so its errors count socket errors only. Status errors are responses with a "
        "status of 400 or above, and socket errors are failed connects, reads and writes and "
        "timeouts (10 s), as wrk counts them. CPU per request is the system's "
        "user and system CPU time over the run, in clock ticks of 10 ms, divided by its requests.",
        error_statuses_text(folder),
        "## Ratios of requests per second",
        ratio_section(folder),
        "## Memory",
        memory_section(folder),
        "## Start and swap",
        start_section(folder),
        "## Destinations from the Destination service",
        destination_section(folder),
        "## Targets",
        targets_section(folder),
    ]
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
