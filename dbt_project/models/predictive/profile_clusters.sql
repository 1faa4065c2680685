{#-
    Which behavioural cluster each profile is in today (k-means on today's features, see
    int_predictive__cluster_assignments), with the cluster's generated name.
    Cluster ids run from 1 (highest mean expected 90-day value) and are stable across rebuilds of
    unchanged data; cluster_descriptions says what each one is.
-#}

with

assignments as (
    select * from {{ ref('int_predictive__cluster_assignments') }}
),

cluster_descriptions as (
    select * from {{ ref('cluster_descriptions') }}
),

final as (
    select
        assignments.profile_id,
        cast(assignments.cluster_id as integer) as cluster_id,
        cluster_descriptions.cluster_name,
        cluster_descriptions.clustered_at
    from assignments
    inner join cluster_descriptions on cluster_descriptions.cluster_id = assignments.cluster_id
)

select * from final
