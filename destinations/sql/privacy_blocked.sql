-- People who must leave every destination whatever the sync's mode: consent withdrawn for its
-- purpose, or a deletion request (plan.sql's privacy_blocked). Runs where the data lives.
{% import "_dialect.sql" as d with context -%}
select
    profile_id,
    nullif(trim(cast({{ d.quote(key_column) }} as {{ d.string_type() }})), '') as record_key
from {{ profile_fields }}
where coalesce(is_deletion_requested, false)
    {%- if consent_column %}
    or not coalesce({{ d.quote(consent_column) }}, false)
    {%- endif %}
