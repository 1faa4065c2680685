{#-
    Stand-in for the Python model models/predictive/int_predictive__predictions.py where dbt
    cannot run Python models (enabled in dbt_project.yml). The predictive step writes this table
    with the same code (meta.fitted_by), its arguments being the models ref'd below, in order.
-#}
{{ config(meta={'fitted_by': 'cdp.predictive.scores:predictions'}) }}
-- depends_on: {{ ref('int_predictive__training_set') }}
-- depends_on: {{ ref('int_predictive__scoring_set') }}

select * from {{ this }}
