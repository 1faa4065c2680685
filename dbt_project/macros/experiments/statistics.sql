{#-
    Statistics for experiment_lift, in plain SQL every engine runs (exp, ln, sqrt, abs, least).
    tests/test_experiment_lift.py checks them against a Python reference and scipy within 1e-4.
-#}

{#- z of the two-sided 95% interval (Φ⁻¹(0.975)) and of 80% power (Φ⁻¹(0.8)). -#}
{% macro z_95() %}1.959963984540054{% endmacro %}
{% macro z_power_80() %}0.8416212335729143{% endmacro %}

{#-
    Two-sided p-value of a standard normal statistic `z` (a column): 2 (1 − Φ(|z|)), with the upper
    tail from Abramowitz & Stegun 26.2.17 (absolute error below 7.5e-8): φ(a)·(b1·t + … + b5·t⁵),
    t = 1 / (1 + 0.2316419·a). The exponent is capped so Postgres never underflows (it raises).
-#}
{% macro two_sided_p_value(z) -%}
    {%- set t = "(1.0 / (1.0 + 0.2316419 * abs(" ~ z ~ ")))" -%}
    least(
        1.0,
        2 * 0.3989422804014327 * exp(-least({{ z }} * {{ z }}, 1400.0) / 2)
        * {{ t }} * (0.319381530 + {{ t }} * (-0.356563782 + {{ t }} * (1.781477937
            + {{ t }} * (-1.821255978 + {{ t }} * 1.330274429))))
    )
{%- endmacro %}

{#- The square root of a variance sum, null where it is not positive (nothing to divide by). -#}
{% macro standard_error(variance_sum) -%}
    sqrt(nullif({{ variance_sum }}, 0))
{%- endmacro %}

{#-
    (low, high) of the 95% interval of the relative lift treated / control − 1, by the delta method on
    the log of the ratio: exp(ln(ratio) ± z·se_log) − 1. Null where either mean is not positive.
-#}
{% macro relative_interval(treated_mean, control_mean, se_log, side) -%}
    case
        when {{ treated_mean }} > 0 and {{ control_mean }} > 0 and {{ se_log }} is not null
            then exp(ln({{ treated_mean }} / {{ control_mean }}) {{ '-' if side == 'low' else '+' }} {{ cdp.z_95() }} * {{ se_log }}) - 1
    end
{%- endmacro %}
