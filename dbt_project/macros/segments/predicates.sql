{#-
    Segment predicates: each returns a query of `profile_id`s, so a segment file composes
    them with `intersect` / `except` / `union`:

        {{ did_event('product_searched', within_days=30, where="search_query like '%running shoes%'") }}
        except
        {{ did_event('order_placed', within_days=30, where="status = 'completed'") }}

    Windows are relative to var('as_of'): "within N days" means
    as_of - N days < occurred_at <= as_of (an event exactly N days old is outside).
-#}

{%- macro as_of_timestamp() -%}
    cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }})
{%- endmacro -%}

{#- Profiles with at least `at_least` events of `event_type` (a name or a list), optionally within N days and matching `where` (SQL over profile_events columns). -#}
{% macro did_event(event_type, within_days=none, where=none, at_least=1, source=none) -%}
    {%- set types = [event_type] if event_type is string else event_type -%}
    select profile_id
    from {{ ref('profile_events') }}
    where event_type in ('{{ types | join("', '") }}')
        {%- if source %}
        and source = '{{ source }}'
        {%- endif %}
        and occurred_at <= {{ as_of_timestamp() }}
        {%- if within_days is not none %}
        and occurred_at > {{ dbt.dateadd('day', -1 * within_days, as_of_timestamp()) }}
        {%- endif %}
        {%- if where %}
        and ({{ where }})
        {%- endif %}
    group by profile_id
    having count(*) >= {{ at_least }}
{%- endmacro %}

{#- Profiles with no such event (every profile in `profiles` minus did_event). -#}
{% macro did_not_event(event_type, within_days=none, where=none, source=none) -%}
    select profile_id from {{ ref('profiles') }}
    except
    {{ did_event(event_type, within_days=within_days, where=where, source=source) }}
{%- endmacro %}

{#- Profiles whose profile_attributes match a SQL condition, e.g. "lifetime_value >= 500". -#}
{% macro has_attribute(condition) -%}
    select profile_id
    from {{ ref('profile_attributes') }}
    where {{ condition }}
{%- endmacro %}

{#- Members of another segment model (by model name). -#}
{% macro in_segment(segment_model) -%}
    select profile_id
    from {{ ref(segment_model) }}
    where profile_id is not null
{%- endmacro %}

{#- Profiles holding an identifier of this type (e.g. a loyalty card). -#}
{% macro has_identifier(identifier_type) -%}
    select distinct profile_id
    from {{ ref('profile_identifiers') }}
    where identifier_type = '{{ identifier_type }}'
{%- endmacro %}
