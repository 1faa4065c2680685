{#-
    Manual segments (curated with `cdp segments …`) in the shape of the `segments` model.
    Empty on a warehouse where the CLI never ran.
-#}

with

definitions as (
    select * from {{ manual_segments_relation('definitions') }}
),

final as (
    select
        segment_name,
        cast('manual' as {{ dbt.type_string() }}) as segment_type,
        description,
        owner
    from definitions
)

select * from final
