"""How long the first model of a server's life takes: from the label that triggers it to the model version.

    python benchmarks/first_model.py              # the worker warmed at start, labels 3 s later
    python benchmarks/first_model.py --after 0    # labels the moment the server is up
    python benchmarks/first_model.py --cold       # no warm-up: the worker starts with the first retrain

A 200-message SMS project (features cached by an earlier server run, as after a restart) gets
20 labels, the 20th of which triggers a retrain (retrain_every 20). The serving side is the real
app through Flask's test client; `serve_app` warms the worker the same way.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from assay import close_app, create_app, store  # noqa: E402
from tests.data import load_sms  # noqa: E402


def _app(path):
    return create_app({"DATABASE": path, "SEED": 0, "RETRAIN_TIMEOUT": 120.0})


def prepare(path) -> int:
    app = _app(path)
    try:
        client = app.test_client()
        pid = client.post("/api/projects", json={"name": "sms", "labels": ["ham", "spam"], "strategy": "margin",
                                                 "batch_size": 10, "retrain_every": 20}).json["id"]
        rows = load_sms(200)
        client.post(f"/api/projects/{pid}/items", json=[{"id": str(i), "text": r["text"]} for i, r in enumerate(rows)])
        assert app.extensions["assay.retrain"].wait_idle(300)  # features cached, cold-start queue
        return pid
    finally:
        close_app(app)


def first_model_seconds(path, pid, warm: bool, after: float) -> float:
    app = _app(path)
    try:
        service = app.extensions["assay.retrain"]
        if warm:
            service.warm()
        time.sleep(after)
        client = app.test_client()
        rows = load_sms(200)
        spam = [i for i, r in enumerate(rows) if r["label"] == "spam"][:6]
        ham = [i for i, r in enumerate(rows) if r["label"] == "ham"][:14]
        for n, i in enumerate(spam + ham, 1):
            if n == 20:
                started = time.perf_counter()
            client.post(f"/api/projects/{pid}/annotations", json={"item_id": i + 1, "label": rows[i]["label"]})
        while (store.latest_version(app.extensions["assay.db"].reader, pid) or {}).get("n_labels") != 20:
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        close_app(app)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="do not warm the worker at start")
    parser.add_argument("--after", type=float, default=3.0, help="seconds between start and the first labels")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pid = prepare(os.path.join(tmp, "prepared", "assay.sqlite"))
        times = []
        for n in range(args.repeat):
            # Each run starts a new server on its own copy of the prepared database and feature cache.
            shutil.copytree(os.path.join(tmp, "prepared"), os.path.join(tmp, f"run{n}"))
            times.append(first_model_seconds(os.path.join(tmp, f"run{n}", "assay.sqlite"), pid,
                                             warm=not args.cold, after=args.after))
    print(f"{'cold' if args.cold else 'warm'} worker, labels {args.after:g} s after start: trigger -> model "
          + ", ".join(f"{t:.2f}" for t in times) + " s")


if __name__ == "__main__":
    main()
