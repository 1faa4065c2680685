with

source as (
    select * from {{ source('crm', 'crm_contacts') }}
),

located as (
    {{ with_country('source', 'source.country') }}
),

renamed as (
    select
        -- ids
        cast(contact_id as {{ dbt.type_string() }}) as contact_id,
        {{ normalise_id('loyalty_card_id', 'loyalty_card_id') }} as loyalty_card_id,

        -- identifiers
        {{ normalise_email('email') }} as email,
        {{ normalise_phone('phone', 'calling_code', 'trunk_prefix') }} as phone,

        -- person
        {{ clean_name('first_name') }} as first_name,
        {{ clean_name('last_name') }} as last_name,
        {{ clean_name('city') }} as city,
        country_code as country,
        nullif(upper(trim(postal_code)), '') as postal_code,
        cast(birth_date as date) as birth_date,

        -- timestamps
        cast(created_at as timestamp) as created_at,
        cast(coalesce(updated_at, created_at) as timestamp) as updated_at

    from located
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', {'email': 'email', 'phone': 'phone', 'loyalty_card_id': 'loyalty_card_id'}) }}
)

select * from final
