with

source as (
    select * from {{ source('privacy', 'deletion_requests') }}
),

located as (
    {{ with_country('source', 'null') }}
),

renamed as (
    select
        -- ids
        cast(request_id as {{ dbt.type_string() }}) as request_id,

        -- identifiers
        lower(trim(identifier_type)) as identifier_type,
        {{ normalise_identifier_by_type('identifier_type', 'identifier_value') }} as identifier_value,

        -- timestamps
        cast(requested_at as timestamp) as requested_at

    from located
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', {'identifier_value': 'identifier_type'}) }}
)

select * from final
