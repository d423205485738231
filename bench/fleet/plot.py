"""`plot.py RESULTS_JSON PNG`: wall time against node count for each flow, first and idempotent run, 0 and 50 ms
RTT, from the fleet section's measurements (bench/fleet/section.py writes RESULTS_JSON). Run with the bench's
plot venv (matplotlib), apart from the Ansible venv so the measured Python stays as it is."""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display on the bench machine
import matplotlib.pyplot as plt  # noqa: E402


def main(results_path, png):
    data = json.load(open(results_path))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    styles = {"gpu_node role": "tab:blue", "ansible.builtin twin": "tab:red"}
    for series in data["series"]:
        # A play that uploaded the modules again (rebuilt during the run) is drawn as a cross, off the line.
        points = sorted((p["nodes"], p["wall"]) for p in series["points"] if not p.get("reupload"))
        for p in series["points"]:
            if p.get("reupload"):
                ax.plot([p["nodes"]], [p["wall"]], marker="x", color="black")
                ax.annotate("modules uploaded again", (p["nodes"], p["wall"]), fontsize=7,
                            textcoords="offset points", xytext=(-110, 4))
        if not points:
            continue
        xs, ys = zip(*points)
        dashed = series["run"] == "first"
        marker = "o" if series["rtt_ms"] == 0 else "s"
        ax.plot(xs, ys, linestyle="--" if dashed else "-", marker=marker, color=styles.get(series["flow"], "gray"),
                alpha=1.0 if series["rtt_ms"] else 0.55,
                label=f"{series['flow']}, {series['run']} run, +{series['rtt_ms']} ms RTT")
    ax.set_xlabel("nodes (forks = nodes, up to the largest count)")
    ax.set_ylabel("wall time of ansible-playbook (s)")
    ax.set_title(f"Fleet of light SSH nodes on one {data.get('machine_short', '')} machine\n{data.get('when', '')}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
