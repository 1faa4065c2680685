{#-
    Identifier normalisation, applied once in staging so every later model compares like
    with like. Each macro returns NULL for a value that must never link records: not an
    identifier of that kind, or listed in the `identifier_blocklist` seed.
-#}

{#-
    The blocklist seed's values of one kind, as a query. A blank value is no entry: under `not in`
    a NULL in the list would make every identifier of that kind unknown, and so dropped.
-#}
{% macro blocklisted_values(identifier_type) -%}
    select identifier_value
    from {{ ref('identifier_blocklist') }}
    where identifier_type = '{{ identifier_type }}' and identifier_value is not null
{%- endmacro %}

{#-
    True when the normalised value of this kind is on the blocklist seed. On DuckDB `value in
    (subquery)` is a MARK join, which is a hash lookup per value (the phone binds the list instead:
    duckdb__normalise_phone). A join is never pruned, but a staging view's key tests read every
    identifier anyway, for its erasure filter (without_erased).
-#}
{% macro is_blocklisted(identifier_type, normalised_expression) -%}
    {{ normalised_expression }} in ({{ cdp.blocklisted_values(identifier_type) }})
{%- endmacro %}

{#-
    DuckDB: the blocklist seed's values of one kind as a list (an uncorrelated scalar subquery, run
    once per query). `coalesce(…, [])`: list() over no rows is NULL, and list_contains(NULL, x) is
    NULL, which would drop every identifier of a kind the seed has no entry for.
    list_contains scans the list for each value: with 1,000 entries of a kind it cost 0.15 s per
    500k values, with 10,000 1.4 s (a hash join: 0.01 s). Fine for the placeholders the seed is
    for; a long list belongs in the sync suppression list.
-#}
{% macro duckdb_blocklist(identifier_type) -%}
    (select coalesce(list(blocklisted.identifier_value), []) from ({{ cdp.blocklisted_values(identifier_type) }}) as blocklisted)
{%- endmacro %}

{#- The pattern of var('identifier_patterns') for one kind, quoted for a SQL string literal. -#}
{% macro identifier_pattern(identifier_type) -%}
    {{ var('identifier_patterns')[identifier_type] | replace("'", "''") }}
{%- endmacro %}

{#- Email: trimmed, lower-cased, must match var('identifier_patterns').email (local@domain.tld). -#}
{% macro normalise_email(expression) -%}
    case
        when {{ cdp.regexp_full_match('lower(trim(' ~ expression ~ '))', cdp.identifier_pattern('email')) }}
            and not {{ cdp.is_blocklisted('email', 'lower(trim(' ~ expression ~ '))') }}
            then lower(trim({{ expression }}))
    end
{%- endmacro %}

{#-
    Phone to E.164 (`+<country code><national number>`), using the record's country for
    numbers typed in national format. Handles `+CC …`, `00CC …`, `(0)` after a country
    code, a national trunk prefix (`0` in most of Europe, `1` in NANP) and bare NANP
    10-digit numbers. The result must match var('identifier_patterns').phone (8–15 digits),
    not be one digit repeated, and not be blocklisted.
    `calling_code` / `trunk_prefix` come from the `countries` seed joined on the record's country.
-#}
{% macro normalise_phone(expression, calling_code, trunk_prefix) -%}
    {{ return(adapter.dispatch('normalise_phone', 'cdp')(expression, calling_code, trunk_prefix)) }}
{%- endmacro %}

{#- The international number (country code and national number, digits only) of a compacted phone. -#}
{% macro international_phone_digits(compact, digits, calling_code, trunk_prefix) -%}
    case
        when {{ compact }} like '+%' then {{ digits }}
        when {{ digits }} like '00%' then substr({{ digits }}, 3)
        when {{ calling_code }} = '1' and length({{ digits }}) = 10 then '1' || {{ digits }}
        when {{ calling_code }} = '1' and length({{ digits }}) = 11 and {{ digits }} like '1%' then {{ digits }}
        when {{ trunk_prefix }} is not null and {{ digits }} like {{ trunk_prefix }} || '%'
            then {{ calling_code }} || substr({{ digits }}, length({{ trunk_prefix }}) + 1)
        when {{ calling_code }} is not null and {{ trunk_prefix }} is null
            then {{ calling_code }} || {{ digits }}
    end
{%- endmacro %}

{#- The E.164 form of an international number when it is a valid phone (pattern, not one digit repeated), before the blocklist. -#}
{% macro valid_phone(international) -%}
    case
        when {{ cdp.regexp_full_match("'+' || " ~ international, cdp.identifier_pattern('phone')) }}
            and not {{ cdp.all_same_digit(international) }}
            then '+' || {{ international }}
    end
{%- endmacro %}

{#- A phone with only its digits and `+` kept, `(0)` after a country code dropped. -#}
{%- macro phone_compact(expression) -%}
    {{ cdp.regexp_replace_all("replace(trim(" ~ expression ~ "), '(0)', '')", '[^0-9+]', '') }}
{%- endmacro %}

{#- The digits of a compacted phone: it holds only digits and `+`, so a plain replace (the regex it replaces was ~13% of a DuckDB phone's cost). -#}
{%- macro phone_digits(compact) -%}
    replace({{ compact }}, '+', '')
{%- endmacro %}

{% macro default__normalise_phone(expression, calling_code, trunk_prefix) -%}
    {%- set compact = cdp.phone_compact(expression) -%}
    {%- set digits = cdp.phone_digits(compact) -%}
    {%- set international = cdp.international_phone_digits(compact, digits, calling_code, trunk_prefix) -%}
    case when not {{ cdp.is_blocklisted('phone', "'+' || " ~ international) }} then {{ cdp.valid_phone(international) }} end
{%- endmacro %}

{#-
    DuckDB: the same steps, each computed once per row. Spelled out as one expression, every step
    repeats its inputs (the number is tested four times, each test re-running both regexes), and
    DuckDB does not share work inside CASE branches: reading 1M consent events took 27 s. A one-element
    list_transform binds a step's value to a name, as a CTE column would.
    The blocklist is bound the same way, as a list beside the valid number: a subquery may not sit
    inside a lambda, and `valid not in (subquery)` outside one computed the number twice per row
    (once for the join, once for the result) and kept the view from skipping the phone when a
    query does not read it.
-#}
{% macro duckdb__normalise_phone(expression, calling_code, trunk_prefix) -%}
    list_transform([struct_pack(
        valid := list_transform([{{ cdp.phone_compact(expression) }}], lambda phone_compact:
            list_transform([{{ cdp.phone_digits('phone_compact') }}], lambda phone_digits:
                list_transform([{{ cdp.international_phone_digits('phone_compact', 'phone_digits', calling_code, trunk_prefix) }}],
                    lambda phone_international: {{ cdp.valid_phone('phone_international') }}
                )[1]
            )[1]
        )[1],
        blocked := {{ cdp.duckdb_blocklist('phone') }}
    )], lambda phone_checked: case when not list_contains(phone_checked.blocked, phone_checked.valid) then phone_checked.valid end)[1]
{%- endmacro %}

{#- True when a string of digits is one digit repeated ("0000000000"). -#}
{% macro all_same_digit(expression) -%}
    (replace({{ expression }}, substr({{ expression }}, 1, 1), '') = '')
{%- endmacro %}

{#- Ids as trimmed text; blocklisted placeholders become NULL. -#}
{% macro normalise_id(identifier_type, expression) -%}
    case
        when nullif(trim(cast({{ expression }} as {{ dbt.type_string() }})), '') is not null
            and not {{ cdp.is_blocklisted(identifier_type, 'upper(trim(cast(' ~ expression ~ ' as ' ~ dbt.type_string() ~ ')))') }}
            then trim(cast({{ expression }} as {{ dbt.type_string() }}))
    end
{%- endmacro %}

{#-
    Names: trimmed, single-spaced, capitalised per word; empty becomes NULL. Whitespace is spelled
    out (`[ \\t\\r\\n]`, a tab, CR or LF on every engine): Java reads the POSIX class
    `[[:space:]]` as the characters `:space`, and on Spark "Marguerite" became "M Rgu Rit ".
-#}
{% macro clean_name(expression) -%}
    nullif({{ cdp.initcap(cdp.regexp_replace_all('trim(' ~ expression ~ ')', '[ \\t\\r\\n]+', ' ')) }}, '')
{%- endmacro %}

{#-
    Select every column of `relation` plus:
      country_code  ISO code of the typed country ('us', 'United Kingdom', ' DE '), NULL if unknown;
      calling_code / trunk_prefix  for reading national phone numbers, from the record's
      country or, when it has none, var('default_country').
    Both come from the country_aliases and countries seeds.
-#}
{% macro with_country(relation, country_expression) -%}
    select
        {{ relation }}.*,
        aliases.country_code,
        dialling.calling_code,
        dialling.trunk_prefix
    from {{ relation }}
    left join {{ ref('country_aliases') }} as aliases
        on aliases.alias = lower(trim({{ country_expression }}))
    left join {{ ref('countries') }} as dialling
        on dialling.country_code = coalesce(aliases.country_code, '{{ var("default_country") }}')
{%- endmacro %}
