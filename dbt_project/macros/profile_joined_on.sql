{#-
    Left-join profile_identifiers (as CTE `profile_identifiers`) to find the profile of one
    identifier column; the joined alias is `by_<identifier_type>`, so `by_email.profile_id`.
-#}
{% macro profile_joined_on(identifier_type, column) -%}
    left join profile_identifiers as by_{{ identifier_type }}
        on by_{{ identifier_type }}.identifier_type = '{{ identifier_type }}'
        and by_{{ identifier_type }}.identifier_value = {{ column }}
{%- endmacro %}
