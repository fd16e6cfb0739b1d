"""Workers stay light: training and predicting on a real cluster imports neither matplotlib nor
scikit-learn, in the client or in any worker (the layers' contract, checked at run time)."""

import json
import subprocess
import sys

HEAVY = ("matplotlib", "sklearn")

SCRIPT = f"""
import json
import sys
import numpy as np
from distributed import Client, LocalCluster

import dasksom

def heavy():
    return sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        som = dasksom.SOM(3, 3, epochs=2, init="pca").fit(np.random.rand(200, 4))
        som.predict(np.random.rand(10, 4))
        som.evaluate(np.random.rand(50, 4))
        print(json.dumps({{"client": heavy(), **client.run(heavy)}}))
"""


def test_training_on_a_cluster_imports_neither_matplotlib_nor_scikit_learn(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])  # {process: [heavy modules]}
    assert len(found) == 3 and not any(found.values()), found
