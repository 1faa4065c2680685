{#-
    POS records carry no country of their own; a store id that starts with an ISO code
    (`GB-004`) gives the country for reading phones typed in national format, else
    var('default_country') applies.
-#}
with

source as (
    select
        *,
        case
            when {{ regexp_full_match('upper(trim(store_id))', '[A-Z]{2}-.*') }}
                then substr(upper(trim(store_id)), 1, 2)
        end as store_country
    from {{ source('pos', 'pos_transactions') }}
),

located as (
    {{ with_country('source', 'source.store_country') }}
),

renamed as (
    select
        -- ids
        cast(transaction_id as {{ dbt.type_string() }}) as transaction_id,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        {{ normalise_id('loyalty_card_id', 'loyalty_card_id') }} as loyalty_card_id,

        -- identifiers
        {{ normalise_phone('phone', 'calling_code', 'trunk_prefix') }} as phone,

        -- strings
        country_code as store_country,

        -- numbers
        cast(amount as decimal(12, 2)) as amount,

        -- timestamps
        cast(occurred_at as timestamp) as occurred_at

    from located
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', {'loyalty_card_id': 'loyalty_card_id', 'phone': 'phone'}) }}
)

select * from final
