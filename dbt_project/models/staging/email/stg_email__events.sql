{%- set identifiers = cdp.staged_identifiers('stg_email__events') %}
{{ cdp.append_only_staging('event_id', identifiers) }}

with

source as (
    select raw_rows.* from {{ source('email', 'email_events') }} as raw_rows
    {{ cdp.where_not_staged('event_id') }}
),

renamed as (
    select
        -- ids
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,

        -- identifiers: email (macros/incremental/append_only_staging.sql)
        {{ cdp.staged_identifier_columns(identifiers) }},

        -- strings
        lower(trim(event_type)) as event_type,

        -- timestamps
        cast(occurred_at as timestamp) as occurred_at,
        {{ cdp.staged_at() }} as staged_at

    from source
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', cdp.erased_by(identifiers)) }}
)

select * from final
