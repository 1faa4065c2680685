{#-
    The bookkeeping of the predictive Python models (DuckDB): what each model's table was computed
    from, so a build whose inputs and code did not change copies the table instead of fitting again.
    cdp/predictive/reuse.py explains the fingerprint and the three steps; these are the two hooks.
    Both run outside dbt's transaction: the model's own connection must see the first, and the second
    runs once the new table has replaced the old. Elsewhere than DuckDB they are empty: the stand-ins
    that share these models' names and configs (fitted_outside_dbt/) are fitted every build.
-#}

{#- (model, fingerprint, pending_fingerprint); reuse.py's FITTED_INPUTS names the same table. -#}
{%- macro fitted_inputs_relation() -%}
    {{ return(cdp.bookkeeping_relation('int_predictive__fitted_inputs')) }}
{%- endmacro -%}

{#- Pre-hook: the table exists; a full refresh, or a model whose table is gone, refits. -#}
{%- macro prepare_fitted_inputs() -%}
    {%- if not execute or target.type != 'duckdb' -%}{{ return('') }}{%- endif -%}
    {%- set fitted_inputs = cdp.fitted_inputs_relation() -%}
    create table if not exists {{ fitted_inputs }} (
        model varchar not null,
        fingerprint varchar,
        pending_fingerprint varchar
    );
    {%- if (flags.FULL_REFRESH or load_cached_relation(this) is none) %}
    delete from {{ fitted_inputs }} where model = '{{ this.identifier }}';
    {%- endif %}
{%- endmacro -%}

{#- Post-hook: the table now holds what the model computed from pending_fingerprint. -#}
{%- macro confirm_fitted_inputs() -%}
    {%- if not execute or target.type != 'duckdb' -%}{{ return('') }}{%- endif -%}
    update {{ cdp.fitted_inputs_relation() }}
    set fingerprint = pending_fingerprint, pending_fingerprint = null
    where model = '{{ this.identifier }}' and pending_fingerprint is not null
{%- endmacro -%}
