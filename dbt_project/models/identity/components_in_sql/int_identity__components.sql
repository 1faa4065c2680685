{#-
    Phase 2 of resolution: connected components over every identifier the guard allows, over
    the graph in int_identity__linkable_record_nodes. A component is one person; its id here is
    internal (the smallest node id) — stable profile ids are assigned in
    int_identity__profile_assignments.

    The portable path: the SQL fixpoint, on engines whose dbt does not run Python models
    (enabled in dbt_project.yml); on DuckDB the model of the same name in components_in_memory/
    gives the same components.
-#}
{{ config(post_hook="{{ drop_component_work_tables('int_identity__components') }}") }}

{{ record_components_in_sql(ref('int_identity__linkable_record_nodes'), prefix='int_identity__components', label_column='component_id') }}
