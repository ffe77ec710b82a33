"""Checking class labels before a fit, without scikit-learn's regression hint."""
from __future__ import annotations

import numpy as np
from sklearn.utils.multiclass import check_classification_targets


def check_class_labels(y) -> None:
    """``check_classification_targets``, except for label names.

    scikit-learn warns ("The number of unique classes is greater than 50% of the
    number of samples ...") whenever more than half the labels are distinct,
    because numbers that distinct may be a regression target. Names never are,
    and with many classes and a label or two each (the start of every annotation
    project, and each fit of ``assay simulate`` on an intent data set) that warning
    came once per fit. A 1-D array of strings is always a valid class target, so
    it is not passed to the check; numbers still are, warning included.
    """
    y_arr = np.asarray(y)
    if y_arr.ndim == 1 and (y_arr.dtype.kind in "US"
                            or (y_arr.dtype == object and all(isinstance(v, str) for v in y_arr))):
        return
    check_classification_targets(y)
