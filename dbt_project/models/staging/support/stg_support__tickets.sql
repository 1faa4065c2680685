with

source as (
    select * from {{ source('support', 'support_tickets') }}
),

renamed as (
    select
        -- ids
        cast(ticket_id as {{ dbt.type_string() }}) as ticket_id,

        -- identifiers
        {{ normalise_email('email') }} as email,

        -- strings
        lower(trim(category)) as category,
        lower(trim(status)) as status,

        -- timestamps
        cast(opened_at as timestamp) as opened_at

    from source
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', {'email': 'email'}) }}
)

select * from final
