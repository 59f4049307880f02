"""Do the methods rank on a development benchmark as they do on real footage (issue 18, point 1)?

The paper's ablation (Table 2: AE_AllData, GCL_B, GCL w/o NL, GCL_PT), five seeds each, on the
pooled walkway (gclvad.datasets.synthetic.pooled_walkway) and on the walkway
(gclvad.datasets.synthetic.walkway, as benchmarks/detection.py's walkway1), both with the
centre crop of I3D and preset `unlabelled`, every video used as unlabelled training footage.
On real footage and in the paper, GCL_PT is well above AE_AllData and negative learning helps
(GCL_PT above GCL w/o NL). Prints the machine, then frame AUC (delivered: smoothed; raw:
before smoothing, the paper's protocol) as mean ± std over the seeds, and whether each benchmark
ranks GCL_PT above AE_AllData and above GCL w/o NL.

Usage:
  snakemake --cores 2 $(python benchmarks/method_order.py --targets) --configfile benchmarks/configs/method_order.yaml
  python benchmarks/method_order.py [--seeds 0 1 2 3 4]
Labels are used for the AUC only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from machine import describe  # benchmarks/ is on sys.path when run

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ("pooled_walkway", "walkway_order")
VARIANTS = ("AE_AllData", "GCL_B", "GCL_wo_NL", "GCL_PT")
EXTRACTOR = "i3d"


def auc_path(benchmark: str, variant: str, seed: int) -> Path:
    return REPO / "results" / benchmark / EXTRACTOR / variant / f"seed{seed}" / "auc.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", action="store_true", help="print the workflow targets and stop")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS))
    args = parser.parse_args()
    paths = {(b, v, s): auc_path(b, v, s) for b in args.benchmarks for v in VARIANTS for s in args.seeds}
    if args.targets:
        print(" ".join(str(path.relative_to(REPO)) for path in paths.values()))
        return
    print(f"machine: {describe()}")
    means: dict[tuple[str, str], float] = {}
    print(f"\nframe AUC, mean ± std over seeds {args.seeds}: smoothed (raw)")
    print(f"| variant | {' | '.join(args.benchmarks)} |")
    print(f"| --- | {' | '.join('---' for _ in args.benchmarks)} |")
    for variant in VARIANTS:
        cells = []
        for benchmark in args.benchmarks:
            records = [
                json.loads(p.read_text())
                for (b, v, _), p in paths.items()
                if (b, v) == (benchmark, variant) and p.is_file()
            ]
            if not records:
                cells.append("-")
                continue
            auc, raw = (np.array([r[key] for r in records]) for key in ("auc", "auc_raw"))
            means[benchmark, variant] = raw.mean()
            cells.append(f"{auc.mean():.4f} ± {auc.std():.4f} ({raw.mean():.4f} ± {raw.std():.4f}) n={len(records)}")
        print(f"| {variant} | {' | '.join(cells)} |")
    for benchmark in args.benchmarks:
        if all((benchmark, v) in means for v in ("AE_AllData", "GCL_wo_NL", "GCL_PT")):
            pt = means[benchmark, "GCL_PT"]
            print(f"{benchmark}: raw GCL_PT - AE_AllData {pt - means[benchmark, 'AE_AllData']:+.4f}, "
                  f"GCL_PT - GCL w/o NL {pt - means[benchmark, 'GCL_wo_NL']:+.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
