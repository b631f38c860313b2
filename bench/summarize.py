"""Prints the short table of a GPU check run against the targets: the fused step (>= 85% of the copy bandwidth at
B >= 256; >= 5x the eager reference and >= 1.25x torch.compile of it at every B from 16 to 512), the end-to-end
loop (bench_e2e.py: protect with the tuner's choice x the official-style loop, vs the floor, the tuning's cost, the
command >= 0.9x protect() on preloaded tensors) and the gallery (bench_gallery.py: >= 0.9x protect() on preloaded
images).

    python bench/summarize.py bench/results/latest
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import read_measurements  # noqa: E402

BASELINES = ("reference", "eager_reference", "eager_stored_noise", "compiled_stored_noise", "compiled_reference",
             "copy")
COPY_TARGET = 0.85
EAGER_TARGET = 5.0
COMPILED_TARGET = 1.25


def ops_entries(rows: list[dict]) -> list[dict]:
    """ops.csv's long rows as one entry per (flags, implementation, batch, RNG contract): its metrics by name."""
    entries: dict[tuple, dict] = {}
    for row in rows:
        config = json.loads(row["config"])
        key = (config["flags"], row["provider"], int(row["x_value"]), config.get("rng_contract"))
        entry = entries.setdefault(key, {"flags": key[0], "impl": key[1], "batch": key[2]})
        entry[row["metric"]] = row["value"]
    return list(entries.values())


def print_rows(entries: list[dict]) -> None:
    print(f"{'flags':6} {'B':>4} {'impl':22} {'ms':>9} {'GB/s':>8} {'%copy':>6} {'x eager':>8} {'x compiled':>10}")
    for entry in entries:
        if entry["impl"] == "copy":
            continue
        eager, compiled = (entry.get(f"speedup_vs_{name}") for name in ("eager_reference", "compiled_reference"))
        print(f"{entry['flags']:6} {entry['batch']:>4} {entry['impl']:22} {entry['time']:9.4f} "
              f"{entry['bandwidth']:8.1f} {entry['frac_of_copy'] * 100:5.1f}% "
              f"{'-' if eager is None else f'{eager:.3f}':>8} {'-' if compiled is None else f'{compiled:.3f}':>10}")


def target_lines(entries: list[dict]) -> list[str]:
    """One line per (flags, fast implementation): the worst value of each target over the batches it covers."""
    lines = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for entry in entries:
        if entry["impl"] not in BASELINES:
            groups.setdefault((entry["flags"], entry["impl"]), []).append(entry)
    for (flags, impl), group in groups.items():
        parts = []
        large = [e["frac_of_copy"] for e in group if e["batch"] >= 256]
        if large:
            worst = min(large)
            parts.append(f"copy {worst:.0%} at B>=256 ({'met' if worst >= COPY_TARGET else 'NOT met'})")
        ranged = [e for e in group if 16 <= e["batch"] <= 512]
        for key, target, label in (("speedup_vs_eager_reference", EAGER_TARGET, "eager"),
                                   ("speedup_vs_compiled_reference", COMPILED_TARGET, "compiled")):
            values = [e[key] for e in ranged if key in e]
            if values:
                worst = min(values)
                parts.append(f"{worst:.2f}x {label} at B 16-512 ({'met' if worst >= target else 'NOT met'})")
        lines.append(f"{flags:6} {impl:22} " + "; ".join(parts or ["no batch in the target ranges"]))
    return lines


E2E_TARGETS = {"cuda": {"agw_r50_nl": 7.0, "osnet_x0_25": 10.0},  # case name -> x the official-style loop
               "cpu": {"osnet_x0_25": 3.0, "onnx": 3.0, "cuhk01": 3.0}}  # at 256x128
GALLERY_TARGET = 0.9


def _value(rows: list[dict], case: str, provider: str, metric: str) -> float | None:
    found = [r["value"] for r in rows if (r["case"], r["provider"], r["metric"]) == (case, provider, metric)]
    return found[0] if found else None


def e2e_lines(rows: list[dict]) -> list[str]:
    """Per case of bench_e2e.py (long format): protect with the tuner's choice (and with its defaults) against the
    official-style loop and the floor, the tuning's cost; then the command against protect() on tensors."""
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows if r["metric"] == "time_per_image"):
        device = "cpu" if next(r for r in rows if r["case"] == case)["device"].startswith("cpu") else "cuda"
        name, size = case.rsplit(" ", 1)
        target = E2E_TARGETS[device].get(name) if device == "cuda" or size == "256x128" else None
        tuned = _value(rows, case, "protect_tuned", "speedup_vs_official_loop")
        default = _value(rows, case, "protect_default", "speedup_vs_official_loop")
        ms = _value(rows, case, "protect_tuned", "time_per_image")
        floors = [v for v in (_value(rows, case, f, "time_per_image") for f in ("floor_nchw", "floor_nhwc")) if v]
        choice = next((json.loads(r["config"]).get("choice") for r in rows
                       if r["case"] == case and r["metric"] == "tuning_cost"), None)
        text = f"{case:22s} tuned ({choice}): {ms:.0f} ms/img, {tuned:.2f}x official" if tuned else f"{case:22s}"
        if target and tuned:
            text += f" (target {target}x: {'met' if tuned >= target else 'NOT met'})"
        if default:
            text += f"; defaults {default:.2f}x"
        if floors and ms:
            text += f"; {ms / min(floors):.2f}x the faster floor"
        cost = _value(rows, case, "tuner", "tuning_cost")
        if cost is not None:
            text += (f"; tuning {cost:.0f} s = {_value(rows, case, 'tuner', 'tuning_cost_of_1000_image_run'):.1f}% "
                     f"of a 1,000-image run")
        lines.append(text)
    for row in rows:
        if row["metric"] == "ratio_to_protect_tensors":
            met = "met" if row["value"] >= GALLERY_TARGET else "NOT met"
            lines.append(f"{row['case']}: pixelfade protect / protect() on tensors = {row['value']:.2f}x "
                         f"({met}: >= {GALLERY_TARGET})")
    return lines


def main(folder: str) -> int:
    root = Path(folder)
    ops = root / "ops.csv"
    if ops.exists():
        rows = read_measurements(ops)
        if rows:
            print(f"{rows[0]['device']} | torch {rows[0]['torch']} | triton {rows[0]['triton']} | {rows[0]['date']}")
        entries = ops_entries(rows)
        print_rows(entries)
        print("\nfused step targets (worst over the batch sizes each covers):")
        for line in target_lines(entries):
            print("  " + line)
    else:
        print(f"no {ops}")
    e2e = root / "e2e.csv"
    if e2e.exists():
        print("\nend to end (bench_e2e.py):")
        for line in e2e_lines(read_measurements(e2e)):
            print("  " + line)
    gallery = root / "gallery.csv"
    if gallery.exists():
        values = {(row["provider"], row["metric"]): row["value"] for row in read_measurements(gallery)}
        ratio = values["pixelfade_protect", "speedup_vs_protect"]
        print(f"\ngallery: pixelfade protect {values['pixelfade_protect', 'throughput']:.3f} img/s vs protect() "
              f"{values['protect', 'throughput']:.3f} img/s = {ratio:.2f}x "
              f"({'met' if ratio >= GALLERY_TARGET else 'NOT met'}: >= {GALLERY_TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest"))
