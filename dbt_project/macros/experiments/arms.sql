{#-
    Experiment arms, assigned in SQL the same way on every engine (cdp/experiments.py says why the
    rule is deterministic, stable and monotonic; tests/test_experiments.py proves it).
-#}

{#-
    The bucket 0..modulus-1 of a text: its MD5 digest read as an unsigned 128-bit little-endian
    integer, mod `modulus`. DuckDB has that number (md5_number); elsewhere the same value comes from
    the digest's 16 bytes, sum of byte_i * (256^i mod modulus), mod modulus. With modulus 100 it is
    the sync engine's holdout bucket (destinations/sql/_dialect.sql, holdout_bucket), bit for bit:
    tests/test_sync_dialects.py checks both against hashlib on every engine.
-#}
{% macro arm_bucket(expression, modulus) -%}
    {{ return(adapter.dispatch('arm_bucket', 'cdp')(expression, modulus)) }}
{%- endmacro %}

{% macro default__arm_bucket(expression, modulus) -%}
    ((
    {%- for i in range(16) %}
        get_byte(decode(md5({{ expression }}), 'hex'), {{ i }}) * {{ (256 ** i) % modulus }}{{ " +" if not loop.last }}
    {%- endfor %}
    ) % {{ modulus }})
{%- endmacro %}

{% macro duckdb__arm_bucket(expression, modulus) -%}
    cast(md5_number({{ expression }}) % {{ modulus }} as integer)
{%- endmacro %}

{% macro spark__arm_bucket(expression, modulus) -%}
    ((
    {%- for i in range(16) %}
        cast(conv(substring(md5({{ expression }}), {{ 2 * i + 1 }}, 2), 16, 10) as int) * {{ (256 ** i) % modulus }}{{ " +" if not loop.last }}
    {%- endfor %}
    ) % {{ modulus }})
{%- endmacro %}

{#-
    Every experiment to assign, as dicts {name, segment, arms: [{name, share}] (control first),
    outcome_days, source}: those declared in var('experiments'), then one per sync with a
    holdout_percent (named after the sync: control = the holdout, treatment = the rest; the sync
    plan holds the same people out with the same bucket). Exposures are read when dbt executes.
-#}
{% macro experiment_definitions() %}
    {%- set default_days = var('experiment_outcome_days', 30) -%}
    {%- set found = [] -%}
    {%- for name, spec in (var('experiments', {}) or {}).items() -%}
        {%- set arms = [{'name': 'control', 'share': spec['arms']['control'] | int}] -%}
        {%- for arm, share in spec['arms'].items() if arm != 'control' -%}
            {%- do arms.append({'name': arm, 'share': share | int}) -%}
        {%- endfor -%}
        {%- do found.append({'name': name, 'segment': spec['segment'], 'arms': arms,
            'outcome_days': spec.get('outcome_days', default_days) | int, 'source': 'experiments'}) -%}
    {%- endfor -%}
    {%- if execute -%}
        {%- for exposure in graph.exposures.values() | sort(attribute='name') -%}
            {%- set meta = (exposure.get('config') or {}).get('meta') or exposure.get('meta') or {} -%}
            {%- set sync = meta.get('sync') or {} -%}
            {%- if (sync.get('holdout_percent') or 0) | int > 0 -%}
                {%- set holdout = sync['holdout_percent'] | int -%}
                {%- do found.append({'name': exposure['name'], 'segment': sync['segment'],
                    'arms': [{'name': 'control', 'share': holdout}, {'name': 'treatment', 'share': 100 - holdout}],
                    'outcome_days': default_days | int, 'source': 'sync holdout'}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{% endmacro %}

{#-
    The arm of `profile_id` in `experiment` (a dict of experiment_definitions()):
    1. bucket(name:profile_id) mod 100 below the control share -> control;
    2. else bucket(name:arm:profile_id) mod 10000 against the other arms' cumulative shares,
       relative to each other (b * their total < cumulative * 10000, whole numbers: no rounding).
-#}
{% macro experiment_arm(experiment, profile_id) -%}
    {%- set control = experiment['arms'][0] -%}
    {%- set others = experiment['arms'][1:] -%}
    {%- set total = others | sum(attribute='share') -%}
    case
        when {{ cdp.arm_bucket("'" ~ experiment['name'] ~ ":' || " ~ profile_id, 100) }} < {{ control['share'] }}
            then 'control'
        {%- for arm in others[:-1] %}
        when {{ cdp.arm_bucket("'" ~ experiment['name'] ~ ":arm:' || " ~ profile_id, 10000) }} * {{ total }}
            < {{ (others[:loop.index] | sum(attribute='share')) * 10000 }}
            then '{{ arm['name'] }}'
        {%- endfor %}
        else '{{ others[-1]['name'] }}'
    end
{%- endmacro %}
