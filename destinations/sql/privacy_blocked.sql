-- People who must leave every destination whatever the sync's mode: consent withdrawn for its
-- purpose, a deletion request, or the global suppression list (plan.sql's privacy_blocked).
-- Runs where the data lives.
{% import "_dialect.sql" as d with context -%}
select
    profile_fields.profile_id,
    nullif(trim(cast(profile_fields.{{ d.quote(key_column) }} as {{ d.string_type() }})), '') as record_key
from {{ profile_fields }} as profile_fields
where coalesce(profile_fields.is_deletion_requested, false)
    {%- if consent_column %}
    or not coalesce(profile_fields.{{ d.quote(consent_column) }}, false)
    {%- endif %}
    or {% filter indent(4) %}{% include "_suppressed.sql" %}{% endfilter %}
