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

person_records as (
    -- the CRM contacts and shop customers, normalised once per build; a person erased in this
    -- build is scrubbed from it by privacy_tombstones' post-hook (macros/privacy/erasure.sql)
    select * from {{ ref('int_identity__person_records') }}
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

profile_records as (
    select
        component_profiles.profile_id,
        person_records.source,
        person_records.record_id,
        person_records.updated_at,
        {{ 'person_records.' ~ columns | join(', person_records.') }}
    from person_records
    inner join record_profiles
        on record_profiles.source = person_records.source
        and record_profiles.record_id = person_records.record_id
    inner join component_profiles on component_profiles.component_id = record_profiles.component_id
),

-- the survivors, and first / last seen, as CTEs ending in `final` (macros/profiles/profile_survivors.sql)
{{ cdp.profile_survivors('profile_records', 'profile_identifiers', columns, priorities) }}

select * from final
