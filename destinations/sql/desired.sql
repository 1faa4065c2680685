-- Desired rows for one sync: every member of the segment with the mapped fields, each
-- marked with why it is not sent: `exclusion` (deletion requested, suppressed, no consent, holdout,
-- an experiment arm not sent: control arm / other arm / no arm, global holdout)
-- or `invalid_reason` (null or malformed key — reported, never sent). An identifier the
-- destination keeps unique (`unique_identifiers`) is left out of the payload where two members share it.
-- Rendered by destinations/plan.py; :names are bound parameters. Runs where the data lives
-- (the build's engine, Spark included); plan.py keeps the rows as the temp table sync_desired
-- in the state store, and marks duplicate keys there (duplicate_keys.sql): a check of the keys
-- alone, on the stored rows, where here it would hold every row, payloads too, to read them twice.
{% import "_dialect.sql" as d with context -%}
{%- set identifier_pairs = [] -%}
{%- set shared = [] -%}
{%- for name, column in identifiers %}
{%- if name in unique_identifiers %}
{%- set _ = shared.append(("shared_identifier_" ~ (shared | length + 1), d.quote(column))) -%}
{%- set _ = identifier_pairs.append((name, "case when " ~ shared[-1][0] ~ ".value is null then profile_fields." ~ d.quote(column) ~ " end")) -%}
{%- else %}
{%- set _ = identifier_pairs.append((name, "profile_fields." ~ d.quote(column))) -%}
{%- endif %}
{%- endfor -%}
{%- set field_pairs = [] -%}
{%- for name, column in fields %}{% set _ = field_pairs.append((name, "experiment_arms.arm" if column == arm_column else "profile_fields." ~ d.quote(column))) %}{% endfor %}
with

-- the segment's members with their fields (a semi-join: membership may list a member twice)
profile_fields as (
    select * from {{ profile_fields }}
    where profile_id in (select profile_id from {{ membership }} where segment_name = :segment)
),
{%- for cte, column in shared %}

-- a value of an identifier the destination keeps unique that two members share: withheld from
-- both (the platform would otherwise merge them into one record, e.g. a family's one phone)
{{ cte }} as (
    select profile_fields.{{ column }} as value
    from profile_fields
    where profile_fields.{{ column }} is not null
    group by profile_fields.{{ column }}
    having count(*) > 1
),
{%- endfor %}
{%- if experiment or global_holdout %}

-- arms as dbt assigned them (models/experiments/experiment_assignments): never recomputed here
assignments as (
    select * from {{ assignments }}
),
{%- endif %}

candidates as (
    select
        profile_fields.profile_id,
        nullif(trim(cast(profile_fields.{{ d.quote(key_column) }} as {{ d.string_type() }})), '') as record_key,
        -- as text once here: the plan keeps the text and hashes it
        {{ d.json_text(d.json_object([
            ("identifiers", d.json_object(identifier_pairs)),
            ("fields", d.json_object(field_pairs)),
        ])) }} as payload,
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
        {%- if not (global_holdout or holdout_percent or experiment) %}
        cast(null as {{ d.string_type() }}) as held_out_as
        {%- else %}
        case
            {%- if global_holdout %}
            when global_holdout.profile_id is not null then 'global holdout'
            {%- endif %}
            {%- if holdout_percent %}
            -- a stable share of profiles per sync: the same people stay held out run after run
            -- (an experiment's control arm by the same rule: macros/experiments/arms.sql)
            when {{ d.holdout_bucket(":sync_name || ':' || profile_fields.profile_id") }} < {{ holdout_percent }}
                then 'holdout'
            {%- endif %}
            {%- if experiment %}
            when experiment_arms.arm is null then 'no arm'
            when experiment_arms.arm = 'control' then 'control arm'
            when experiment_arms.arm not in ({% for arm in arms %}'{{ arm }}'{{ ", " if not loop.last }}{% endfor %})
                then 'other arm'
            {%- endif %}
        end as held_out_as
        {%- endif %}
    from profile_fields
    {%- for cte, column in shared %}
    left join {{ cte }} on {{ cte }}.value = profile_fields.{{ column }}
    {%- endfor %}
    {%- if experiment %}
    left join assignments as experiment_arms
        on experiment_arms.profile_id = profile_fields.profile_id
        and experiment_arms.experiment = :experiment
    {%- endif %}
    {%- if global_holdout %}
    left join assignments as global_holdout
        on global_holdout.profile_id = profile_fields.profile_id
        and global_holdout.experiment = :global_holdout_experiment
        and global_holdout.arm = 'control'
    {%- endif %}
),

marked as (
    select
        *,
        case
            when is_deletion_requested then 'deletion requested'
            when is_suppressed then 'suppressed'
            when not has_consent then 'no consent'
            else held_out_as
        end as exclusion
    from candidates
),

final as (
    select
        profile_id,
        record_key,
        payload,
        {{ d.md5("payload") }} as payload_hash,
        {%- for name, columns in coverage %}
        {{ d.quote("covers__" ~ name) }},
        {%- endfor %}
        exclusion,
        case
            when exclusion is not null then null
            when record_key is null then 'null key'
            {%- if checks_key_format %}
            -- the pattern staging normalises with (dbt var identifier_patterns); case-blind,
            -- as staging matches after lower-casing
            when not {{ d.regexp_full_match('record_key', ':key_pattern') }} then 'malformed key'
            {%- endif %}
        end as invalid_reason
    from marked
)

select * from final
