"""k-means clusters of today's profiles over behavioural features from SQL. The fitting lives in
cdp/predictive/clusters.py (the predictive step runs the same code on engines without dbt Python
models; see that module for the features, k and the stable cluster ids).

Reading the predictions also makes dbt run this model after int_predictive__predictions: two
Python models importing scikit-learn at the same moment in dbt's threads can fail with a
circular-import error.

Only the columns the clusters read cross into pandas (and only today's predictions), already
sorted by profile_id, as Arrow-backed frames (cdp/predictive/inputs.py: the same values as
``.df()``, less memory).

Unchanged inputs and code: the table is copied as it stands, as int_predictive__predictions' is
(cdp/predictive/reuse.py).

Output: one row per profile: profile_id, cluster_id, silhouette, k, overall_silhouette,
selection_criterion.
"""

from cdp.predictive.clusters import PREDICTION_COLUMNS, PROFILE_COLUMNS, clusters
from cdp.predictive.reuse import computed_unless_unchanged


def model(dbt, session):
    profiles = (dbt.ref("int_predictive__scoring_set"), PROFILE_COLUMNS)
    predictions = (dbt.ref("int_predictive__predictions").filter("scored_set = 'current'"), PREDICTION_COLUMNS)
    return computed_unless_unchanged(dbt, session, clusters, [profiles, predictions])
