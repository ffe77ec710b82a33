"""``assay simulate``: replay the labeling loop on a data set whose labels are already known.

The loop is the server's own (:func:`assay.learning.acquire.run_round`, the
featurizers in ``assay.features``, the models in ``assay.models``, the
strategy registry); this package only supplies the data, hides the labels
behind an :class:`~assay.simulate.oracle.Oracle` that reveals one only when a
strategy asks for it, measures each round on a held-out split, and writes the
curves, a summary and a plot.

* ``data``: CSV/TSV/JSONL files, image folders and ``sklearn:*`` data sets as item dicts + labels.
* ``splits``: the per-seed test split, pool cap and initial labeled set.
* ``oracle``: the label oracle.
* ``peers``: modAL's and BaaL's strategies, run on the same fitted model.
* ``run``: the experiment loop (seeds and strategies, optionally in processes).
* ``report``: ``curves.csv``, ``summary.csv``, the printed table and ``curves.png``.
* ``command``: the click command.
"""
