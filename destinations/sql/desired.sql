-- Desired rows for one sync: every member of the segment with the mapped fields, each
-- marked with why it is not sent: `exclusion` (deletion requested, suppressed, no consent, holdout)
-- or `invalid_reason` (null, duplicate or malformed key — reported, never sent).
-- Rendered by destinations/plan.py; :names are bound parameters. Runs where the data lives
-- (the build's engine, Spark included); plan.py keeps the rows as the temp table sync_desired
-- in the state store.
{% import "_dialect.sql" as d with context -%}
{%- set identifier_pairs = [] -%}
{%- for name, column in identifiers %}{% set _ = identifier_pairs.append((name, "profile_fields." ~ d.quote(column))) %}{% endfor -%}
{%- set field_pairs = [] -%}
{%- for name, column in fields %}{% set _ = field_pairs.append((name, "profile_fields." ~ d.quote(column))) %}{% endfor %}
with

members as (
    select distinct profile_id
    from {{ membership }}
    where segment_name = :segment
),

profile_fields as (
    select * from {{ profile_fields }}
),

candidates as (
    select
        profile_fields.profile_id,
        nullif(trim(cast(profile_fields.{{ d.quote(key_column) }} as {{ d.string_type() }})), '') as record_key,
        {{ d.json_object([
            ("identifiers", d.json_object(identifier_pairs)),
            ("fields", d.json_object(field_pairs)),
        ]) }} as payload,
        -- which mapped identifiers this member carries (the plan reports their coverage)
        {%- for name, columns in coverage %}
        ({%- for column in columns %}profile_fields.{{ d.quote(column) }} is not null{{ " and " if not loop.last }}{%- endfor %})
            as {{ d.quote("covers__" ~ name) }},
        {%- endfor %}
        {%- if consent_column %}
        coalesce(profile_fields.{{ d.quote(consent_column) }}, false) as has_consent,
        {%- else %}
        true as has_consent,
        {%- endif %}
        coalesce(profile_fields.is_deletion_requested, false) as is_deletion_requested,
        {% filter indent(8) %}{% include "_suppressed.sql" %}{% endfilter %} as is_suppressed,
        {%- if holdout_percent %}
        -- a stable share of profiles per sync: the same people stay held out run after run
        {{ d.holdout_bucket(":sync_name || ':' || profile_fields.profile_id") }} < {{ holdout_percent }} as is_held_out
        {%- else %}
        false as is_held_out
        {%- endif %}
    from members
    inner join profile_fields on profile_fields.profile_id = members.profile_id
),

marked as (
    select
        *,
        case
            when is_deletion_requested then 'deletion requested'
            when is_suppressed then 'suppressed'
            when not has_consent then 'no consent'
            when is_held_out then 'holdout'
        end as exclusion
    from candidates
),

counted as (
    select
        *,
        -- duplicates are counted among the rows that would be sent
        count(*) over (partition by exclusion is null, record_key) as profiles_with_key
    from marked
),

final as (
    select
        profile_id,
        record_key,
        {{ d.json_text("payload") }} as payload,
        {{ d.md5(d.json_text("payload")) }} as payload_hash,
        {%- for name, columns in coverage %}
        {{ d.quote("covers__" ~ name) }},
        {%- endfor %}
        exclusion,
        case
            when exclusion is not null then null
            when record_key is null then 'null key'
            when profiles_with_key > 1 then 'duplicate key'
            {%- if checks_key_format %}
            -- the pattern staging normalises with (dbt var identifier_patterns); case-blind,
            -- as staging matches after lower-casing
            when not {{ d.regexp_full_match('record_key', ':key_pattern') }} then 'malformed key'
            {%- endif %}
        end as invalid_reason
    from counted
)

select * from final
