{#-
    Consent purposes are declared once, as var('consent_purposes') in dbt_project.yml;
    each has one boolean column, named here (and by cdp/dbt_vars.py's consent_column for
    the sync engine). A new purpose is one line in that var.
-#}

{#- The column holding consent for one purpose: has_<purpose>_consent. -#}
{% macro consent_column(purpose) -%}
    has_{{ purpose }}_consent
{%- endmacro %}
