{#-
    The golden record: one row per person.

    Survivorship, per column (var profile_source_priority in dbt_project.yml):
      1. sources in the configured order (e.g. email: shop before crm — the login email is
         the current one);
      2. within a source, the most recently updated record's non-null value;
      3. for email and phone only, if no CRM/shop record has one: the most recently seen
         identifier of that kind from any source (web sign-in, POS, support, email events).
    first_seen_at / last_seen_at span every identifier of the profile, from every source.
-#}
{%- set priorities = var('profile_source_priority') -%}
{%- set columns = ['email', 'phone', 'first_name', 'last_name', 'city', 'country', 'postal_code'] -%}

with

assignments as (
    -- without the profiles erased so far, this build's included (macros/privacy/erasure.sql)
    select * from {{ ref('int_identity__profile_assignments') }}
    where profile_id not in ({{ cdp.erased_profile_ids() }})
),

record_profiles as (
    select * from {{ ref('int_identity__record_profiles') }}
),

crm_contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

shop_customers as (
    select * from {{ ref('stg_shop__customers') }}
),

profile_identifiers as (
    select * from {{ ref('profile_identifiers') }}
),

component_profiles as (
    select distinct
        component_id,
        profile_id
    from assignments
),

person_records as (
    select
        'crm' as source, contact_id as record_id, updated_at,
        {{ columns | join(', ') }}
    from crm_contacts
    union all
    select
        'shop' as source, customer_id as record_id, updated_at,
        {{ columns | join(', ') }}
    from shop_customers
),

profile_records as (
    select
        component_profiles.profile_id,
        person_records.*
    from person_records
    inner join record_profiles
        on record_profiles.source = person_records.source
        and record_profiles.record_id = person_records.record_id
    inner join component_profiles on component_profiles.component_id = record_profiles.component_id
),

candidates as (
    {%- for column in columns %}
    select
        profile_id,
        '{{ column }}' as column_name,
        cast({{ column }} as {{ dbt.type_string() }}) as value,
        case source
            {%- for source in priorities[column] %}
            when '{{ source }}' then {{ loop.index }}
            {%- endfor %}
            else 99
        end as source_rank,
        updated_at as observed_at
    from profile_records
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
    from profile_identifiers
    where identifier_type in ('email', 'phone')
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
    from profile_identifiers
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

select * from final
