{#-
    One row per (experiment, arm): what each arm did in its outcome window, and each non-control
    arm against control. One model for every experiment (not one per experiment) because the
    experiments are a var: a new experiment is a line of YAML, not a new file; `cdp lift NAME`
    and the sync's Dagster metadata read its rows.

    The outcome: a purchase (a completed online order or a positive in-store sale, as
    int_attributes__purchases counts them) and its revenue, within `outcome_days` after the member
    entered the segment (entered_at < occurred_at <= entered_at + N days). Only members whose
    window closed by var('as_of') are compared; the rest are counted in members_in_window.

    conversion: lift = p_t − p_c with a Wald (unpooled) 95% interval; p-value of the pooled
    two-proportion z-test. revenue per member (non-buyers count as 0): difference of means with a
    Welch standard error and its normal p-value (arms here are hundreds or more). Relative lifts
    (treated / control − 1) get a delta-method interval on the log ratio. The minimum detectable
    effect is what a two-sided 5% test detects with 80% power at these sizes, from control's
    variance; a note says so when an arm's result is not significant.
-#}
{%- set as_of = "cast('" ~ var('as_of') ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
{%- set experiments = cdp.experiment_definitions() -%}
{%- if (var('global_holdout_percent', 0) | int) > 0 -%}
    {%- do experiments.append({'name': 'global_holdout', 'outcome_days': var('experiment_outcome_days', 30) | int}) -%}
{%- endif -%}
{%- set double = cdp.type_double() -%}

with

assignments as (
    select * from {{ ref('experiment_assignments') }}
),

profile_events as (
    select * from {{ ref('profile_events') }}
),

purchases as (
    select
        profile_id,
        cast(amount as {{ double }}) as revenue,
        occurred_at
    from profile_events
    where (source = 'shop' and event_type = 'order_placed' and status = 'completed')
        or (source = 'pos' and amount > 0)
),

windows as (
    {%- for experiment in experiments %}
    select
        experiment,
        arm,
        profile_id,
        {{ experiment.outcome_days }} as outcome_days,
        entered_at,
        {{ dbt.dateadd('day', experiment.outcome_days, 'entered_at') }} as window_ends_at
    from assignments
    where experiment = '{{ experiment.name }}'
    union all
    {%- endfor %}
    select
        cast(null as {{ dbt.type_string() }}) as experiment,
        cast(null as {{ dbt.type_string() }}) as arm,
        cast(null as {{ dbt.type_string() }}) as profile_id,
        0 as outcome_days,
        cast(null as {{ dbt.type_timestamp() }}) as entered_at,
        cast(null as {{ dbt.type_timestamp() }}) as window_ends_at
    from assignments
    where 1 = 0
),

member_outcomes as (
    select
        windows.experiment,
        windows.arm,
        windows.profile_id,
        windows.outcome_days,
        windows.window_ends_at <= {{ as_of }} as is_window_closed,
        max(case when purchases.profile_id is not null then 1 else 0 end) as converted,
        coalesce(sum(purchases.revenue), 0) as revenue
    from windows
    left join purchases
        on purchases.profile_id = windows.profile_id
        and purchases.occurred_at > windows.entered_at
        and purchases.occurred_at <= windows.window_ends_at
    group by
        windows.experiment,
        windows.arm,
        windows.profile_id,
        windows.outcome_days,
        windows.window_ends_at
),

per_arm as (
    select
        experiment,
        arm,
        max(outcome_days) as outcome_days,
        sum(case when is_window_closed then 1 else 0 end) as members,
        sum(case when is_window_closed then 0 else 1 end) as members_in_window,
        sum(case when is_window_closed then converted else 0 end) as conversions,
        avg(case when is_window_closed then cast(converted as {{ double }}) end) as conversion_rate,
        avg(case when is_window_closed then revenue end) as revenue_per_member,
        coalesce(var_samp(case when is_window_closed then revenue end), 0) as revenue_variance
    from member_outcomes
    group by experiment, arm
),

against_control as (
    select
        per_arm.*,
        control.members as control_members,
        control.conversions as control_conversions,
        control.conversion_rate as control_conversion_rate,
        control.revenue_per_member as control_revenue_per_member,
        control.revenue_variance as control_revenue_variance,
        cast(per_arm.members as {{ double }}) as n_t,
        cast(control.members as {{ double }}) as n_c
    from per_arm
    left join per_arm as control
        on control.experiment = per_arm.experiment
        and control.arm = 'control'
    where per_arm.members > 0
        and control.members > 0
        and per_arm.arm <> 'control'
),

standard_errors as (
    select
        experiment,
        arm,
        conversion_rate - control_conversion_rate as conversion_lift,
        {{ cdp.standard_error(
            "conversion_rate * (1 - conversion_rate) / n_t"
            ~ " + control_conversion_rate * (1 - control_conversion_rate) / n_c") }} as conversion_se,
        {{ cdp.standard_error(
            "((conversions + control_conversions) / (n_t + n_c))"
            ~ " * (1 - (conversions + control_conversions) / (n_t + n_c)) * (1 / n_t + 1 / n_c)") }}
            as conversion_pooled_se,
        case when conversions > 0 and control_conversions > 0 then
            {{ cdp.standard_error(
                "(1 - conversion_rate) / conversions + (1 - control_conversion_rate) / control_conversions") }}
        end as conversion_se_log,
        sqrt(control_conversion_rate * (1 - control_conversion_rate) * (1 / n_t + 1 / n_c))
            as conversion_mde_se,
        revenue_per_member - control_revenue_per_member as revenue_lift,
        {{ cdp.standard_error("revenue_variance / n_t + control_revenue_variance / n_c") }} as revenue_se,
        case when revenue_per_member > 0 and control_revenue_per_member > 0 then
            {{ cdp.standard_error(
                "revenue_variance / (n_t * revenue_per_member * revenue_per_member)"
                ~ " + control_revenue_variance / (n_c * control_revenue_per_member * control_revenue_per_member)") }}
        end as revenue_se_log,
        sqrt(control_revenue_variance * (1 / n_t + 1 / n_c)) as revenue_mde_se,
        conversion_rate,
        control_conversion_rate,
        revenue_per_member,
        control_revenue_per_member
    from against_control
),

test_statistics as (
    select
        *,
        conversion_lift / conversion_pooled_se as conversion_z,
        revenue_lift / revenue_se as revenue_z
    from standard_errors
),

compared as (
    select
        experiment,
        arm,
        conversion_lift,
        conversion_lift - {{ cdp.z_95() }} * conversion_se as conversion_lift_ci_low,
        conversion_lift + {{ cdp.z_95() }} * conversion_se as conversion_lift_ci_high,
        conversion_rate / nullif(control_conversion_rate, 0) - 1 as conversion_relative_lift,
        {{ cdp.relative_interval('conversion_rate', 'control_conversion_rate', 'conversion_se_log', 'low') }}
            as conversion_relative_lift_ci_low,
        {{ cdp.relative_interval('conversion_rate', 'control_conversion_rate', 'conversion_se_log', 'high') }}
            as conversion_relative_lift_ci_high,
        {{ cdp.two_sided_p_value('conversion_z') }} as conversion_p_value,
        ({{ cdp.z_95() }} + {{ cdp.z_power_80() }}) * conversion_mde_se as conversion_mde,
        revenue_lift,
        revenue_lift - {{ cdp.z_95() }} * revenue_se as revenue_lift_ci_low,
        revenue_lift + {{ cdp.z_95() }} * revenue_se as revenue_lift_ci_high,
        revenue_per_member / nullif(control_revenue_per_member, 0) - 1 as revenue_relative_lift,
        {{ cdp.relative_interval('revenue_per_member', 'control_revenue_per_member', 'revenue_se_log', 'low') }}
            as revenue_relative_lift_ci_low,
        {{ cdp.relative_interval('revenue_per_member', 'control_revenue_per_member', 'revenue_se_log', 'high') }}
            as revenue_relative_lift_ci_high,
        {{ cdp.two_sided_p_value('revenue_z') }} as revenue_p_value,
        ({{ cdp.z_95() }} + {{ cdp.z_power_80() }}) * revenue_mde_se as revenue_mde
    from test_statistics
),

final as (
    select
        per_arm.experiment,
        per_arm.arm,
        per_arm.arm = 'control' as is_control,
        cast(per_arm.outcome_days as {{ dbt.type_int() }}) as outcome_days,
        cast(per_arm.members as {{ dbt.type_bigint() }}) as members,
        cast(per_arm.members_in_window as {{ dbt.type_bigint() }}) as members_in_window,
        cast(per_arm.conversions as {{ dbt.type_bigint() }}) as conversions,
        per_arm.conversion_rate,
        per_arm.revenue_per_member,
        compared.conversion_lift,
        compared.conversion_lift_ci_low,
        compared.conversion_lift_ci_high,
        compared.conversion_relative_lift,
        compared.conversion_relative_lift_ci_low,
        compared.conversion_relative_lift_ci_high,
        compared.conversion_p_value,
        compared.conversion_mde,
        compared.revenue_lift,
        compared.revenue_lift_ci_low,
        compared.revenue_lift_ci_high,
        compared.revenue_relative_lift,
        compared.revenue_relative_lift_ci_low,
        compared.revenue_relative_lift_ci_high,
        compared.revenue_p_value,
        compared.revenue_mde,
        case
            when per_arm.arm = 'control' then 'control: the baseline'
            when compared.arm is null
                then 'too small to tell: no member of this arm or of control has a closed outcome window yet'
            when compared.conversion_p_value < 0.05 or compared.revenue_p_value < 0.05 then null
            else {{ dbt.concat([
                "'too small to tell: at these sizes only a conversion lift of '",
                cdp.number_text('coalesce(100 * compared.conversion_mde, 0)', 1),
                "' points or a revenue lift of '",
                cdp.number_text('coalesce(compared.revenue_mde, 0)', 2),
                "' per member is detectable (80% power, 5% significance)'",
            ]) }}
        end as note
    from per_arm
    left join compared
        on compared.experiment = per_arm.experiment
        and compared.arm = per_arm.arm
)

select * from final
