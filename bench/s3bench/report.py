"""The comparison table printed at the end of a run, and the ratios stored with the results."""

MEGABYTE = 1_000_000
MEBIBYTE = 1 << 20
# CPU use by other processes above this many cores makes a result unreliable on a small machine.
OTHER_CPU_WARNING_CORES = 0.2

# (row label template, test name, result field, unit kind, whether the PUT durability note applies)
ROWS = [
    ("{small} PUT ops/s, {clients} clients", "small_put", "ops_per_second", "rate", True),
    ("{small} PUT p99 latency ms", "small_put", ("latency_ms", "p99"), "latency", True),
    ("{small} PUT server CPU µs per request", "small_put", "server_cpu_microseconds_per_request", "rate", False),
    ("{small} GET ops/s, {clients} clients", "small_get", "ops_per_second", "rate", False),
    ("{small} GET p99 latency ms", "small_get", ("latency_ms", "p99"), "latency", False),
    ("{small} GET server CPU µs per request", "small_get", "server_cpu_microseconds_per_request", "rate", False),
    ("{large} PUT MB/s, 1 stream, median", "large_put", "megabytes_per_second", "rate", True),
    ("{large} GET MB/s, 1 stream, median", "large_get", "megabytes_per_second", "rate", False),
    ("{rss} PUT peak server RSS MiB", "rss_put", "peak_rss_mebibytes", "memory", False),
]


def add_derived_fields(document):
    """Add fields computed from the measured ones, such as the server CPU time per request.

    CPU time per request is less sensitive than ops/s to other load on the machine.
    """
    for server in document["servers"].values():
        for test in ("small_put", "small_get"):
            result = server["results"].get(test)
            if result and result.get("ops_per_second"):
                result["server_cpu_microseconds_per_request"] = (
                    result["server_cpu_cores"] / result["ops_per_second"] * 1_000_000
                )


def format_size(size):
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def _field(result, field):
    if isinstance(field, tuple):
        for part in field:
            result = result.get(part) if isinstance(result, dict) else None
        return result
    return result.get(field)


def _format_value(value, kind):
    if value is None:
        return "-"
    if kind == "latency":
        return f"{value:.2f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def compute_ratios(document):
    """Return keyless/SeaweedFS for every row that both servers measured."""
    servers = document["servers"]
    if "keyless" not in servers or "seaweedfs" not in servers:
        return {}
    ratios = {}
    for _, test, field, _, _ in ROWS:
        keyless = servers["keyless"]["results"].get(test)
        seaweedfs = servers["seaweedfs"]["results"].get(test)
        if not keyless or not seaweedfs:
            continue
        numerator, denominator = _field(keyless, field), _field(seaweedfs, field)
        if numerator is None or not denominator:
            continue
        name = field if isinstance(field, str) else "_".join(field)
        ratios[f"{test}.{name}"] = numerator / denominator
    return ratios


def render_table(document):
    options = document["options"]
    labels = {
        "small": format_size(options["object_size"]),
        "large": format_size(options["large_size"]),
        "rss": format_size(options["rss_size"]),
        "clients": options["clients"],
    }
    server_names = list(document["servers"])
    headers = ["metric"] + [document["servers"][name]["display_name"] for name in server_names]
    show_ratio = "keyless" in server_names and "seaweedfs" in server_names
    if show_ratio:
        headers.append("keyless/SeaweedFS")

    rows = []
    for label, test, field, kind, durability_note in ROWS:
        if not any(test in document["servers"][name]["results"] for name in server_names):
            continue
        row = [label.format(**labels) + (" *" if durability_note else "")]
        for name in server_names:
            result = document["servers"][name]["results"].get(test)
            cell = "-" if result is None else _format_value(_field(result, field), kind)
            if result and result.get("errors"):
                cell += f" ({result['errors']} errors)"
            row.append(cell)
        if show_ratio:
            name = field if isinstance(field, str) else "_".join(field)
            ratio = document["ratios"].get(f"{test}.{name}")
            row.append("-" if ratio is None else f"{ratio:.2f}")
        rows.append(row)

    widths = [max(len(str(row[column])) for row in [headers] + rows) for column in range(len(headers))]
    lines = []
    for index, row in enumerate([headers] + rows):
        cells = [str(row[0]).ljust(widths[0])] + [str(cell).rjust(widths[column]) for column, cell in enumerate(row) if column]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))

    lines.append("")
    for name in server_names:
        server = document["servers"][name]
        lines.append(f"* {server['display_name']} {server['durability_note']}.")
    lines.append("MB = 10^6 bytes. Latency is per request, measured by the client.")
    disturbance = max(
        (result.get("other_processes_cpu_cores", 0.0)
         for name in server_names for result in document["servers"][name]["results"].values()),
        default=0.0,
    )
    if disturbance > OTHER_CPU_WARNING_CORES:
        lines.append(f"WARNING: other processes used up to {disturbance:.2f} CPU cores during these tests, "
                     "so the numbers are lower than on an idle machine.")
    for name in server_names:
        for test, message in document["servers"][name].get("failures", {}).items():
            lines.append(f"{document['servers'][name]['display_name']} {test} failed: {message}")
    return "\n".join(lines)
