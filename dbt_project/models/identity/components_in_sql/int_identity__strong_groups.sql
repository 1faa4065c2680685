{#-
    Phase 1 of resolution: groups of records joined by strong identifiers only (email,
    customer id), over the graph in int_identity__strong_record_nodes. The guard then asks of
    each weak identifier how many of these groups it would join.

    The portable path: the SQL fixpoint, on engines whose dbt does not run Python models
    (enabled in dbt_project.yml); on DuckDB the model of the same name in components_in_memory/
    gives the same groups.
-#}
{{ config(post_hook="{{ drop_component_work_tables('int_identity__strong') }}") }}

{{ record_components_in_sql(ref('int_identity__strong_record_nodes'), prefix='int_identity__strong', label_column='group_id') }}
