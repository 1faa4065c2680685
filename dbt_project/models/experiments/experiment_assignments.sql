{#-
    One row per (experiment, profile) that ever entered the experiment's segment: its arm and the
    day it entered (the first stay in segment_membership_history). People who left the segment keep
    their row: lift compares everyone assigned (intention to treat), not only who is in now.

    Arms come from a hash of (experiment, profile id) (macros/experiments/arms.sql): the same on
    every build and every engine, whatever else the segment does. The global holdout (var
    global_holdout_percent) is the experiment `global_holdout` over every profile; its control arm
    is excluded from every sync and from every other experiment, so their arms compare only people
    a sync could reach. Syncs read this model (destinations/sql/desired.sql) and never recompute it.
-#}
{%- set experiments = cdp.experiment_definitions() -%}
{%- set global_holdout = var('global_holdout_percent', 0) | int -%}
{%- set global_experiment = {'name': 'global_holdout', 'arms': [
    {'name': 'control', 'share': global_holdout}, {'name': 'treatment', 'share': 100 - global_holdout}]} -%}

with

history as (
    select * from {{ ref('segment_membership_history') }}
),

profiles as (
    select * from {{ ref('profiles') }}
),

entries as (
    select
        history.segment_name,
        history.profile_id,
        min(history.entered_at) as entered_at
    from history
    inner join profiles on profiles.profile_id = history.profile_id
    group by history.segment_name, history.profile_id
),

global_holdout as (
    {%- if global_holdout > 0 %}
    select
        'global_holdout' as experiment,
        profile_id,
        {{ cdp.experiment_arm(global_experiment, 'profile_id') }} as arm,
        first_seen_at as entered_at
    from profiles
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as experiment,
        cast(null as {{ dbt.type_string() }}) as profile_id,
        cast(null as {{ dbt.type_string() }}) as arm,
        cast(null as {{ dbt.type_timestamp() }}) as entered_at
    from profiles
    where 1 = 0
    {%- endif %}
),

held_out_everywhere as (
    select profile_id
    from global_holdout
    where arm = 'control'
),

assigned as (
    select * from global_holdout
    {%- for experiment in experiments %}
    union all
    select
        '{{ experiment.name }}' as experiment,
        entries.profile_id,
        {{ cdp.experiment_arm(experiment, 'entries.profile_id') }} as arm,
        entries.entered_at
    from entries
    where entries.segment_name = '{{ experiment.segment }}'
        and entries.profile_id not in (select held_out_everywhere.profile_id from held_out_everywhere)
    {%- endfor %}
),

final as (
    select
        cast(experiment as {{ dbt.type_string() }}) as experiment,
        cast(profile_id as {{ dbt.type_string() }}) as profile_id,
        cast(arm as {{ dbt.type_string() }}) as arm,
        cast(entered_at as date) as entered_on,
        cast(entered_at as {{ dbt.type_timestamp() }}) as entered_at
    from assigned
)

select * from final
