"""The stress data sets of docs/RESULTS.md (issue 27), written to the folder given (default: here).

letters.csv: a letters-like table (26 classes, 16 integer features, 20,000 rows) from make_classification;
letters_noise.csv: the same with 10% of the labels replaced by a random letter; digits_rare.csv: sklearn's
digits as 64 pixel columns with the digit 3 cut to 12% of its rows (1.6% of the set).

    python benchmarks/estimate/make_data.py /tmp/stress
    PYTHONPATH=benchmarks/estimate assay simulate /tmp/stress/letters.csv --model tempered:cold ...
"""
import pathlib
import sys

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits, make_classification


def main(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    X, y = make_classification(n_samples=20000, n_features=16, n_informative=14, n_redundant=2, n_classes=26,
                               n_clusters_per_class=2, class_sep=3.3, flip_y=0.01, random_state=7)
    X = np.round((X - X.min(0)) / (X.max(0) - X.min(0)) * 15).astype(int)
    letters = pd.DataFrame(X, columns=[f"f{i}" for i in range(16)])
    letters["label"] = [chr(65 + int(v)) for v in y]
    letters.to_csv(out / "letters.csv", index=False)
    rng = np.random.default_rng(0)
    noisy = letters.copy()
    flip = rng.random(len(noisy)) < 0.1
    noisy.loc[flip, "label"] = rng.choice(sorted(letters.label.unique()), size=int(flip.sum()))
    noisy.to_csv(out / "letters_noise.csv", index=False)
    digits = load_digits()
    keep = (digits.target != 3) | (rng.random(len(digits.target)) < 0.12)
    table = pd.DataFrame(digits.data[keep].astype(int), columns=[f"p{i}" for i in range(64)])
    table["label"] = [f"d{v}" for v in digits.target[keep]]
    table.to_csv(out / "digits_rare.csv", index=False)
    print(f"wrote {out}/letters.csv, letters_noise.csv ({flip.mean():.1%} flipped), digits_rare.csv "
          f"({(table.label == 'd3').mean():.1%} of the rows are the rare class)")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "."))
