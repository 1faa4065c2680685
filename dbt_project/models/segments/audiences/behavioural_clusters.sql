-- One segment per behavioural cluster (profile_clusters), named after the cluster.
select
    'cluster_' || cast(clusters.cluster_id as {{ dbt.type_string() }}) as segment_name,
    clusters.profile_id,
    descriptions.description as segment_description
from {{ ref('profile_clusters') }} as clusters
inner join {{ ref('cluster_descriptions') }} as descriptions
    on descriptions.cluster_id = clusters.cluster_id
