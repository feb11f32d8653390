"""The PNG plots of the report (matplotlib, Agg backend): hit-latency distributions,
hit throughput by thread count, and semantic lookup latency against index size.

Small on purpose (80 dpi, optimised PNGs): the three together stay well under 200 KB, so
regenerating them in every `make bench` does not bloat the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.peers.report import _Run as Run

__all__ = ["COLORS", "make_plots"]

COLORS = {"floor": "#9e9e9e", "ours": "#1f77b4", "peer": "#ff7f0e"}


def make_plots(run: Run, samples: dict[str, Any], img_dir: Path, out: Path) -> dict[str, str]:
    """Writes the PNGs; returns {figure: path relative to the report}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    img_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    save: dict[str, Any] = {"dpi": 80, "bbox_inches": "tight", "pil_kwargs": {"optimize": True}}

    def rel(path: Path) -> str:
        try:
            return str(path.relative_to(out.parent))
        except ValueError:
            return str(path)

    hits = samples.get("hit", {})
    ids = [cid for cid in run.measured("hit") if hits.get(cid)]
    if ids:
        fig, ax = plt.subplots(figsize=(8, 0.42 * len(ids) + 1.2))
        data = [[ns / 1e3 for ns in hits[cid]] for cid in ids]
        box = ax.boxplot(
            data,
            vert=False,
            whis=(5, 95),
            showfliers=False,
            patch_artist=True,
            widths=0.6,
            medianprops={"color": "black"},
        )
        for patch, cid in zip(box["boxes"], ids, strict=True):
            patch.set_facecolor(COLORS[run.role(cid)])
            patch.set_alpha(0.75)
        ax.set_yticks(range(1, len(ids) + 1), [run.name(c) for c in ids], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("hit latency, µs (log; box p25-p75, line p50, whiskers p5-p95)")
        ax.set_title("Exact-match hit latency, same requests, one run", fontsize=10)
        ax.legend(
            handles=[
                Patch(facecolor=COLORS[k], alpha=0.75, label=label)
                for k, label in (("floor", "raw floor"), ("ours", "llmcache"), ("peer", "peer"))
            ],
            fontsize=8,
            loc="lower right",
        )
        ax.grid(axis="x", which="both", alpha=0.3)
        fig.tight_layout()
        path = img_dir / "hit_latency.png"
        fig.savefig(path, **save)
        plt.close(fig)
        made["hit"] = rel(path)

    tp_ids = run.measured("throughput")
    if tp_ids:
        fig, ax = plt.subplots(figsize=(8, 0.42 * len(tp_ids) + 1.2))
        threads = ("1", "2", "8")
        height = 0.26
        for k, t in enumerate(threads):
            vals = [run.value("throughput", cid, t) or 0.0 for cid in tp_ids]
            ax.barh(
                [i + (k - 1) * height for i in range(len(tp_ids))],
                vals,
                height=height,
                label=f"{t} thread{'s' if t != '1' else ''}",
                color=("#c6dbef", "#6baed6", "#08519c")[k],
            )
        ax.set_yticks(range(len(tp_ids)), [run.name(c) for c in tp_ids], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("hits per second, all threads together (log)")
        ax.set_title("Hit throughput by thread count", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="x", which="both", alpha=0.3)
        fig.tight_layout()
        path = img_dir / "throughput.png"
        fig.savefig(path, **save)
        plt.close(fig)
        made["throughput"] = rel(path)

    vec = samples.get("vectors", {})
    if vec:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        sizes = sorted(vec)
        methods = list(vec[sizes[0]])
        styles = ("o-", "s-", "o--", "s--", "^-.", "d:")
        for m, style in zip(methods, styles, strict=False):
            xs, p50, lo, hi = [], [], [], []
            for n in sizes:
                ns = sorted(vec[n].get(m, []))
                if not ns:
                    continue
                med = ns[len(ns) // 2] / 1e3
                xs.append(n)
                p50.append(med)
                lo.append(med - ns[int(0.05 * (len(ns) - 1))] / 1e3)
                hi.append(ns[int(0.95 * (len(ns) - 1))] / 1e3 - med)
            ax.errorbar(xs, p50, yerr=[lo, hi], fmt=style, capsize=3, label=m, markersize=5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("vectors in the index (dim 384)")
        ax.set_ylabel("one k=1 lookup, µs (p50, bars p5-p95)")
        ax.set_title("Semantic lookup latency against index size", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(which="both", alpha=0.3)
        fig.tight_layout()
        path = img_dir / "semantic_lookup.png"
        fig.savefig(path, **save)
        plt.close(fig)
        made["vectors"] = rel(path)
    return made
