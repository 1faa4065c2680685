{#-
    Materialization of a model fitted outside dbt: on engines whose dbt adapter has no Python
    models (Postgres, Spark outside Databricks), the predictive step (cdp/predictive/step.py) runs
    the Python model's code and writes its table; the stand-in model in
    models/predictive/fitted_outside_dbt/ has the same name and relation, so every model that
    refs it, and every test on it, works as on DuckDB. This materialization writes nothing: it
    checks that the step's table is there and fails loudly, saying how to fit it, when it is not.
-#}
{% materialization fitted_outside_dbt, default %}
    {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
    {%- if existing is none -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ " is fitted outside dbt on target " ~ target.name ~ " (dbt-" ~ target.type
            ~ " runs no Python models), and " ~ this ~ " does not exist yet. `cdp build --target " ~ target.name
            ~ "` fits it between two dbt invocations; or run `python -m cdp.predictive.step --target "
            ~ target.name ~ "` after building its inputs.") }}
    {%- endif -%}
    {{ run_hooks(pre_hooks) }}
    {%- call statement('main') -%}
        select count(*) as fitted_rows from {{ this }}
    {%- endcall -%}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [this]}) }}
{% endmaterialization %}
