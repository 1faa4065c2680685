{#-
    profiles' golden record from its candidates (models/profiles/profiles.sql states the rules): CTEs
    ending in `final`, one row per profile of `profile_identifiers` with each of `columns` the value
    that survives, and the profile's first and last seen. The model's own CTEs come before them:

      profile_records      one row per CRM / shop record of a profile: profile_id, source,
                           updated_at and the columns;
      profile_identifiers  the profile's identifiers: the email / phone fallback and first/last seen.

    Dispatched because DuckDB picks each survivor in one grouped pass (an ordered `first` per column)
    where the portable form unpivots every value, ranks it in a window partitioned by profile and
    column, and pivots back: at 1M people that window sorted ~10M rows, most of profiles' time.
    Both give the same survivor: the first by (source rank, observed_at desc, value), with the
    fallback (rank 100) only where no record has a value.
-#}
{% macro profile_survivors(profile_records, profile_identifiers, columns, priorities) -%}
    {{ return(adapter.dispatch('profile_survivors', 'cdp')(profile_records, profile_identifiers, columns, priorities)) }}
{%- endmacro %}

{#- The rank of a record's source for `column` (var profile_source_priority): 1, 2, ... or 99 when unlisted. -#}
{% macro profile_source_rank(column, priorities) -%}
    case source
        {%- for source in priorities[column] %}
        when '{{ source }}' then {{ loop.index }}
        {%- endfor %}
        else 99
    end
{%- endmacro %}

{#- The identifier types a profile column falls back to when no record has a value. -#}
{% macro profile_fallback_columns() -%}
    {{ return(['email', 'phone']) }}
{%- endmacro %}

{% macro default__profile_survivors(profile_records, profile_identifiers, columns, priorities) %}
    candidates as (
        {%- for column in columns %}
        select
            profile_id,
            '{{ column }}' as column_name,
            cast({{ column }} as {{ dbt.type_string() }}) as value,
            {{ cdp.profile_source_rank(column, priorities) }} as source_rank,
            updated_at as observed_at
        from {{ profile_records }}
        where {{ column }} is not null
        union all
        {%- endfor %}
        -- fallback contact points seen anywhere (web sign-ins, POS, support, email events)
        select
            profile_id,
            identifier_type as column_name,
            identifier_value as value,
            100 as source_rank,
            last_seen_at as observed_at
        from {{ profile_identifiers }}
        where identifier_type in ('{{ cdp.profile_fallback_columns() | join("', '") }}')
    ),

    survivors as (
        select
            profile_id,
            column_name,
            value
        from (
            select
                candidates.*,
                row_number() over (
                    partition by profile_id, column_name
                    order by source_rank asc, observed_at desc, value asc
                ) as survivor_rank
            from candidates
        ) as ranked
        where survivor_rank = 1
    ),

    seen as (
        select
            profile_id,
            min(first_seen_at) as first_seen_at,
            max(last_seen_at) as last_seen_at
        from {{ profile_identifiers }}
        group by profile_id
    ),

    final as (
        select
            seen.profile_id,
        {%- for column in columns %}
            max(case when survivors.column_name = '{{ column }}' then survivors.value end) as {{ column }},
        {%- endfor %}
            seen.first_seen_at,
            seen.last_seen_at
        from seen
        left join survivors on survivors.profile_id = seen.profile_id
        group by seen.profile_id, seen.first_seen_at, seen.last_seen_at
    )
{% endmacro %}

{% macro duckdb__profile_survivors(profile_records, profile_identifiers, columns, priorities) %}
    {%- set fallbacks = cdp.profile_fallback_columns() %}
    record_survivors as (
        select
            profile_id,
            {%- for column in columns %}
            {%- set value = 'cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ ')' %}
            first({{ value }} order by {{ cdp.profile_source_rank(column, priorities) }} asc, updated_at desc, {{ value }} asc)
                filter (where {{ column }} is not null) as {{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ profile_records }}
        group by profile_id
    ),

    seen as (
        -- first and last seen, and the fallback contact points seen anywhere (web sign-ins, POS, support, email events)
        select
            profile_id,
            {%- for column in fallbacks %}
            first(identifier_value order by last_seen_at desc, identifier_value asc)
                filter (where identifier_type = '{{ column }}') as fallback_{{ column }},
            {%- endfor %}
            min(first_seen_at) as first_seen_at,
            max(last_seen_at) as last_seen_at
        from {{ profile_identifiers }}
        group by profile_id
    ),

    final as (
        select
            seen.profile_id,
        {%- for column in columns %}
        {%- if column in fallbacks %}
            coalesce(record_survivors.{{ column }}, seen.fallback_{{ column }}) as {{ column }},
        {%- else %}
            record_survivors.{{ column }},
        {%- endif %}
        {%- endfor %}
            seen.first_seen_at,
            seen.last_seen_at
        from seen
        left join record_survivors on record_survivors.profile_id = seen.profile_id
    )
{% endmacro %}
