"""The audit's trade-off: for each allowed false-flag rate, the face threshold, the recall on people known to
be the same under two datasets' names, the rate measured across datasets, and how many training identities
would be dropped. Reads the composed set's sources and the evaluation faces as `make compose` does; the
embeddings come from its cache (run `make compose` first, or the first call embeds everything).

    python benchmarks/bench_audit_rates.py [--rates 1e-4 1e-5 1e-6 1e-7]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from facedata import audit as audit_mod  # noqa: E402
from facedata.compose import compose, parse_source  # noqa: E402
from models_definition.zoo import load_model  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rates", type=float, nargs="+", default=[1e-4, 1e-5, 1e-6, 1e-7])
    args = p.parse_args()
    sources = [parse_source(s) for s in config.COMPOSE_SOURCES]
    items = compose(sources).items
    eval_sets = audit_mod.project_eval_sets(config)
    sface = load_model("sface", config.MODELS, device="cpu")
    rows = []
    for rate in args.rates:
        start = time.perf_counter()
        r = audit_mod.audit(items, {s.name: s.key for s in sources}, eval_sets, sface,
                            config.DATA_DIR / "cache" / "embeddings", max_false_flag_rate=rate, progress=False)
        t = r.threshold
        by_key = {f.identity for f in r.flags if f.by == "key"}
        rows.append({"max false-flag rate": rate, "cosine": round(t["cosine"], 4),
                     "recall on known same people": t["recall_known_same"],
                     "measured across datasets": t.get("measured_false_flag_rate"),
                     "expected false flags": round(t["expected_false_flags"], 1),
                     "identities flagged": len(r.flagged_identities()),
                     "by face only": len(r.flagged_identities() - by_key),
                     "seconds": round(time.perf_counter() - start, 1)})
        print(" | ".join(str(v) for v in rows[-1].values()))
    print(record("audit_rates", {"rows": rows, "training_identities": len({it.identity for it in items})}))


if __name__ == "__main__":
    main()
