{#-
    Stand-in for the Python model models/predictive/int_predictive__cluster_assignments.py where
    dbt cannot run Python models (enabled in dbt_project.yml). The predictive step writes this
    table with the same code (meta.fitted_by), its arguments being the models ref'd below, in order.
-#}
{{ config(meta={'fitted_by': 'cdp.predictive.clusters:clusters'}) }}
-- depends_on: {{ ref('int_predictive__scoring_set') }}
-- depends_on: {{ ref('int_predictive__predictions') }}

select * from {{ this }}
