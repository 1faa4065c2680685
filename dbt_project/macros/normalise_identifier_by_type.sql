{#-
    Normalise an (identifier_type, identifier_value) pair as staging normalises that kind
    of identifier elsewhere, so consent and deletion requests match profile identifiers.
    Phones without an international prefix are read in the located country (`calling_code`,
    `trunk_prefix` columns from `with_country`).
-#}
{% macro normalise_identifier_by_type(type_expression, value_expression) -%}
    case lower(trim({{ type_expression }}))
        when 'email' then {{ normalise_email(value_expression) }}
        when 'phone' then {{ normalise_phone(value_expression, 'calling_code', 'trunk_prefix') }}
        when 'customer_id' then {{ normalise_id('customer_id', value_expression) }}
    end
{%- endmacro %}
