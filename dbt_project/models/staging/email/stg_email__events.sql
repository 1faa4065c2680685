with

source as (
    select * from {{ source('email', 'email_events') }}
),

renamed as (
    select
        -- ids
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,

        -- identifiers
        {{ normalise_email('email') }} as email,

        -- strings
        lower(trim(event_type)) as event_type,

        -- timestamps
        cast(occurred_at as timestamp) as occurred_at

    from source
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', {'email': 'email'}) }}
)

select * from final
