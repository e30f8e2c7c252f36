"""How well a selection covers its classes in feature space.

For every member of a class (the split's candidates), the distance to the
nearest selected sample of the same class: its mean says how far a typical
image is from one the model trains on, its maximum is the covering radius.
Features are standardised over the split's candidates, as the ``diverse``
strategy sees them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from curate.select._align import align_features
from curate.select._labels import class_order, label_text

__all__ = ["coverage"]


def coverage(selection: pd.DataFrame, features: pd.DataFrame, *, split: str = "train") -> pd.DataFrame:
    """Distances from every class member to the nearest selected sample of its class.

    Parameters
    ----------
    selection : DataFrame
        A table from :func:`~curate.select.selection.select`.
    features : DataFrame
        Numeric columns indexed by (or with) ``sample_id``.
    split : str
        The split to measure.

    Returns
    -------
    DataFrame
        Indexed by class: ``members`` (samples not excluded), ``selected``,
        ``mean_distance`` and ``max_distance`` (NaN for a class with nothing selected).
    """
    rows = selection[(selection["split"] == split) & selection["exclusion_reason"].isna()]
    matrix = align_features(features, rows["sample_id"], needed_by="coverage")
    scale = matrix.std(axis=0)
    matrix = (matrix - matrix.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    classes = label_text(rows["label"]).to_numpy()
    chosen = rows["selected"].to_numpy(dtype=bool)
    out = []
    for name in class_order(pd.Series(classes).dropna()):
        members = classes == name
        picked = members & chosen
        if picked.any():
            nearest = cdist(matrix[members], matrix[picked]).min(axis=1)
            mean, worst = float(nearest.mean()), float(nearest.max())
        else:
            mean = worst = float("nan")
        out.append({"class": name, "members": int(members.sum()), "selected": int(picked.sum()),
                    "mean_distance": mean, "max_distance": worst})
    return pd.DataFrame(out).set_index("class")
