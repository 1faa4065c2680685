with

source as (
    select * from {{ source('privacy', 'consent_events') }}
),

located as (
    {{ with_country('source', 'null') }}
),

renamed as (
    select
        -- identifiers
        lower(trim(identifier_type)) as identifier_type,
        {{ normalise_identifier_by_type('identifier_type', 'identifier_value') }} as identifier_value,

        -- strings
        lower(trim(purpose)) as purpose,
        source,

        -- booleans
        cast(granted as boolean) as is_granted,

        -- timestamps
        cast(recorded_at as timestamp) as recorded_at

    from located
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', {'identifier_value': 'identifier_type'}) }}
)

select * from final
