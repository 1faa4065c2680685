{#-
    Everything a sync may map, one row per profile: the golden record (profiles) beside
    every computed attribute (profile_attributes), consent flags and deletion requests
    included. Sync definitions (exposures in _syncs__exposures.yml) name these columns in
    their `identifiers` and `fields`; the sync engine checks the names against this view.

    The attribute columns are listed from the relation, so a new attribute is mappable
    without touching this file.
-#}
{%- set profile_columns = adapter.get_columns_in_relation(ref('profiles'))
    | map(attribute='name') | map('lower') | list %}
{%- set attribute_columns = adapter.get_columns_in_relation(ref('profile_attributes'))
    | map(attribute='name') | map('lower') | list %}

with

profiles as (
    select * from {{ ref('profiles') }}
),

profile_attributes as (
    select * from {{ ref('profile_attributes') }}
),

-- the attribute columns are rendered from a loop sqlfluff cannot see through
-- noqa: disable=LT02, LT09, ST11
final as (
    select
        profiles.*
        {%- for column in attribute_columns if column not in profile_columns %},
        profile_attributes.{{ adapter.quote(column) }}
        {%- endfor %}
    from profiles
    left join profile_attributes on profile_attributes.profile_id = profiles.profile_id
)
-- noqa: enable=LT02, LT09, ST11

select * from final
