{#- Whether a profile_fields row is on the global suppression list: the SHA-256 of its normalised
email or phone is among the hashes destinations/plan.py loaded as `sync_suppressed` where the data
lives (destinations/suppression.py normalises and hashes the list's values the same way: email
trimmed and lower-cased, phone in E.164 as staging keeps it). Included by desired.sql and
privacy_blocked.sql; `suppression_columns` are (column, kind) pairs; no columns: false. -#}
{% import "_dialect.sql" as d with context -%}
{%- if suppression_columns -%}
coalesce(
    {%- for column, kind in suppression_columns %}
    {%- set value = "trim(cast(profile_fields." ~ d.quote(column) ~ " as " ~ d.string_type() ~ "))" %}
    {{ d.sha256("lower(" ~ value ~ ")" if kind == "email" else value) }} in (select value_sha256 from sync_suppressed)
    {{- " or" if not loop.last }}
    {%- endfor %},
    false
)
{%- else -%}
false
{%- endif -%}