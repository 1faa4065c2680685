{#-
    Every deletion request as a tombstone, whichever way it came: raw.deletion_requests (the user's
    loaders; normalised in staging, hashed here) and `cdp forget` (privacy.forget_requests, which
    holds the tombstone only: the CLI hashes what it is given and never stores the identifier).
    A raw request whose value is not a valid identifier of its type normalises to NULL and is left
    out (it can match nobody); a request already erased has left the staging view (its tombstone
    blocks it), so this table holds the requests still to erase and no identifier value.
-#}
with

raw_requests as (
    select * from {{ ref('stg_privacy__deletion_requests') }}
),

cli_requests as (
    select * from {{ cdp.cli_table_relation('privacy_requests', 'forget_requests') }}
),

hashed_raw_requests as (
    select
        request_id,
        identifier_type,
        {{ cdp.tombstone('identifier_type', 'identifier_value') }} as tombstone,
        requested_at,
        'raw' as source
    from raw_requests
    where identifier_value is not null
),

final as (
    select * from hashed_raw_requests
    union all
    select
        cast(request_id as {{ dbt.type_string() }}) as request_id,
        cast(identifier_type as {{ dbt.type_string() }}) as identifier_type,
        cast(tombstone as {{ dbt.type_string() }}) as tombstone,
        cast(requested_at as {{ dbt.type_timestamp() }}) as requested_at,
        'cli' as source
    from cli_requests
)

select * from final
