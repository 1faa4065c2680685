{#- Dialect macros: every construct one engine spells differently, in one place. Templates import
    them with the context (`{% import "_dialect.sql" as d with context %}`) and render with
    `dialect` = duckdb | postgres | spark (destinations.warehouse.base.Warehouse.dialect).
    The DuckDB form of each is what the templates said before other engines existed.
    Spark only computes desired rows (desired.sql) and never holds sync state: the state
    templates need the duckdb and postgres forms. -#}

{%- macro quote(name) -%}
{%- if dialect == "spark" %}`{{ name }}`{% else %}"{{ name }}"{% endif -%}
{%- endmacro %}

{%- macro string_type() -%}
{%- if dialect == "spark" %}string{% else %}varchar{% endif -%}
{%- endmacro %}

{#- (key, SQL expression) pairs -> a JSON object expression; nest them freely, then json_text() -#}
{%- macro json_object(pairs) -%}
{%- if dialect == "spark" and not pairs -%}
cast(map() as map<string, string>)
{%- else -%}
{%- if dialect == "duckdb" %}json_object({% elif dialect == "postgres" %}json_build_object({% else %}named_struct({% endif -%}
{%- for key, value in pairs %}
'{{ key }}', {{ value }}{{ "," if not loop.last }}
{%- endfor %}
)
{%- endif -%}
{%- endmacro %}

{#- a json_object() as text; Spark's to_json keeps null fields only when told to -#}
{%- macro json_text(expression) -%}
{%- if dialect == "spark" -%}
to_json({{ expression }}, map('ignoreNullFields', 'false'))
{%- else -%}
cast({{ expression }} as varchar)
{%- endif -%}
{%- endmacro %}

{#- lower-case hex SHA-256 of the UTF-8 text -#}
{%- macro sha256(expression) -%}
{%- if dialect == "postgres" -%}
encode(sha256(convert_to({{ expression }}, 'UTF8')), 'hex')
{%- elif dialect == "spark" -%}
sha2({{ expression }}, 256)
{%- else -%}
sha256({{ expression }})
{%- endif -%}
{%- endmacro %}

{#- lower-case hex MD5 of the text (the same function name everywhere) -#}
{%- macro md5(expression) -%}
md5({{ expression }})
{%- endmacro %}

{#- The holdout bucket 0..99 of a text: its MD5 digest read as an unsigned 128-bit little-endian
    integer (DuckDB's md5_number), mod 100. Elsewhere the same number from the digest's 16 bytes:
    sum of byte_i * (256^i mod 100), mod 100 — bit-identical, so nobody changes arms when the
    warehouse moves (tests/test_sync_dialects.py checks it against hashlib). -#}
{%- macro holdout_bucket(expression) -%}
{%- if dialect == "duckdb" -%}
(md5_number({{ expression }}) % 100)
{%- else -%}
((
{%- for i in range(16) %}
    {% if dialect == "postgres" -%}
    get_byte(decode(md5({{ expression }}), 'hex'), {{ i }})
    {%- else -%}
    cast(conv(substring(md5({{ expression }}), {{ 2 * i + 1 }}, 2), 16, 10) as int)
    {%- endif %} * {{ (256 ** i) % 100 }}{{ " +" if not loop.last }}
{%- endfor %}
) % 100)
{%- endif -%}
{%- endmacro %}

{#- the value of the row with the largest `by` in the group -#}
{%- macro arg_max(value, by) -%}
{%- if dialect == "postgres" -%}
(array_agg({{ value }} order by {{ by }} desc))[1]
{%- elif dialect == "spark" -%}
max_by({{ value }}, {{ by }})
{%- else -%}
arg_max({{ value }}, {{ by }})
{%- endif -%}
{%- endmacro %}

{#- any one value of the group (Postgres 15 has no any_value) -#}
{%- macro any_value(value) -%}
{%- if dialect == "postgres" %}min({{ value }}){% else %}any_value({{ value }}){% endif -%}
{%- endmacro %}

{#- the whole text matches the pattern, case-blind -#}
{%- macro regexp_full_match(expression, pattern) -%}
{%- if dialect == "postgres" -%}
{{ expression }} ~* ('^(?:' || {{ pattern }} || ')$')
{%- elif dialect == "spark" -%}
regexp_like({{ expression }}, concat('(?i)^(?:', {{ pattern }}, ')$'))
{%- else -%}
regexp_full_match({{ expression }}, {{ pattern }}, 'i')
{%- endif -%}
{%- endmacro %}

{#- `create or replace [temp] table name as` (Postgres: drop, then create: two statements) -#}
{%- macro create_table_as(name, temporary=false) -%}
{%- if dialect == "postgres" -%}
drop table if exists {{ name }};
create {{ "temp " if temporary }}table {{ name }} as
{%- else -%}
create or replace {{ "temp " if temporary }}table {{ name }} as
{%- endif -%}
{%- endmacro %}
