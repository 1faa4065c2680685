{#-
    A table's key in one query: `columns` together unique and never null, and each of `required` never
    null. One row per fault (what is wrong, and the key). Worth it on a view, which every test computes
    again: on experiment_lift it replaces unique + a not_null per key column.
-#}
{% test primary_key(model, columns, required=[]) %}
    {%- set key = columns | join(', ') %}
    {%- set present = [] %}
    {%- for column in columns + required %}
        {%- do present.append(column ~ ' is not null') %}
    {%- endfor %}
    with

    rows_under_test as (
        select {{ (columns + required) | join(', ') }} from {{ model }}
    ),

    null_values as (
        select 'null in a key or required column' as fault, {{ key }}, count(*) as n_records
        from rows_under_test
        where not ({{ present | join(' and ') }})
        group by {{ key }}
    ),

    repeated_keys as (
        select 'key repeated' as fault, {{ key }}, count(*) as n_records
        from rows_under_test
        group by {{ key }}
        having count(*) > 1
    )

    select * from null_values
    union all
    select * from repeated_keys
{% endtest %}
