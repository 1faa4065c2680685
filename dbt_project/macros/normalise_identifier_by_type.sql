{#-
    Normalise an (identifier_type, identifier_value) pair as staging normalises that kind
    of identifier elsewhere, so consent and deletion requests match profile identifiers.
    Phones without an international prefix are read in the located country (`calling_code`,
    `trunk_prefix` columns from `with_country`).
-#}
{% macro normalise_identifier_by_type(type_expression, value_expression) -%}
    {#- each branch normalises the value only on rows of its type: the blocklist lookups become joins
        evaluated on every row, and without this a phone's regexes ran on every email too -#}
    {%- set of_type = 'case when lower(trim(' ~ type_expression ~ ")) = '{type}' then " ~ value_expression ~ ' end' -%}
    case lower(trim({{ type_expression }}))
        when 'email' then {{ normalise_email(of_type.format(type='email')) }}
        when 'phone' then {{ normalise_phone(of_type.format(type='phone'), 'calling_code', 'trunk_prefix') }}
        when 'customer_id' then {{ normalise_id('customer_id', of_type.format(type='customer_id')) }}
    end
{%- endmacro %}
