{#-
    Email and web engagement per profile over the last 30 and 90 days, and a 0-100 score.
    One row per profile with any email or web event by var('as_of').

    Windows are half-open and end at as_of: "30d" is (as_of - 30 days, as_of], so an event
    exactly 30 days before as_of is outside. Events after as_of are ignored.

    Web activity is counted in sessions, not events: a session starts at a profile's first
    web event, and at every web event 30 minutes or more after the previous one (the usual
    analytics timeout; `identify` calls are tracking plumbing, not activity, and are left
    out). A session counts in a window when it starts inside it. Sessions keep one busy
    visit (ten product views) from outweighing ten separate visits.

    engagement_score: points, each term capped, summed (maximum 100):
        email opens,    last 30 days   5 per open,     at most 15
        email clicks,   last 30 days  10 per click,    at most 20
        web sessions,   last 30 days   5 per session,  at most 25
        email opens,    last 90 days   2 per open,     at most 10
        email clicks,   last 90 days   4 per click,    at most 10
        web sessions,   last 90 days   2 per session,  at most 20
    The 90-day counts include the last 30 days, so recent activity weighs more: 60 points
    can only be earned in the last 30 days. Caps sit near the 90th percentile of active
    people in the sample (weekly campaigns; 6 web sessions in 90 days) so a handful of
    very active people do not compress everyone else.
-#}
{%- set as_of = "cast('" ~ var('as_of') ~ "' as timestamp)" -%}
{%- set session_timeout_minutes = 30 -%}

{{ cdp.per_profile_incremental() }}

with

profile_events as (
    select * from {{ ref('profile_events') }}
),

email_events as (
    select
        profile_id,
        event_type,
        occurred_at
    from profile_events
    where source = 'email'
        and event_type in ('opened', 'clicked')
        and occurred_at <= {{ as_of }}
        and {{ cdp.is_affected_profile('profile_id') }}
),

web_events as (
    select
        profile_id,
        occurred_at,
        lag(occurred_at) over (partition by profile_id order by occurred_at) as previous_occurred_at
    from profile_events
    where source = 'web'
        and event_type <> 'identify'
        and occurred_at <= {{ as_of }}
        and {{ cdp.is_affected_profile('profile_id') }}
),

web_sessions as (
    select
        profile_id,
        occurred_at as started_at
    from web_events
    where previous_occurred_at is null
        or occurred_at >= {{ dbt.dateadd('minute', session_timeout_minutes, 'previous_occurred_at') }}
),

activity as (
    select
        profile_id,
        case when event_type = 'opened' then 1 else 0 end as is_open,
        case when event_type = 'clicked' then 1 else 0 end as is_click,
        0 as is_session,
        occurred_at
    from email_events
    union all
    select
        profile_id,
        0 as is_open,
        0 as is_click,
        1 as is_session,
        started_at as occurred_at
    from web_sessions
),

windowed as (
    select
        *,
        case when occurred_at > {{ dbt.dateadd('day', -30, as_of) }} then 1 else 0 end as in_30d,
        case when occurred_at > {{ dbt.dateadd('day', -90, as_of) }} then 1 else 0 end as in_90d
    from activity
),

counts as (
    select
        profile_id,
        sum(is_open * in_30d) as email_opens_30d,
        sum(is_click * in_30d) as email_clicks_30d,
        sum(is_session * in_30d) as web_sessions_30d,
        sum(is_open * in_90d) as email_opens_90d,
        sum(is_click * in_90d) as email_clicks_90d,
        sum(is_session * in_90d) as web_sessions_90d
    from windowed
    group by profile_id
),

scored as (
    select
        *,
        case when 5 * email_opens_30d > 15 then 15 else 5 * email_opens_30d end
        + case when 10 * email_clicks_30d > 20 then 20 else 10 * email_clicks_30d end
        + case when 5 * web_sessions_30d > 25 then 25 else 5 * web_sessions_30d end
        + case when 2 * email_opens_90d > 10 then 10 else 2 * email_opens_90d end
        + case when 4 * email_clicks_90d > 10 then 10 else 4 * email_clicks_90d end
        + case when 2 * web_sessions_90d > 20 then 20 else 2 * web_sessions_90d end
            as engagement_points
    from counts
),

final as (
    select
        profile_id,
        cast(engagement_points as integer) as engagement_score,
        cast(email_opens_30d as integer) as email_opens_30d,
        cast(email_clicks_30d as integer) as email_clicks_30d,
        cast(email_opens_90d as integer) as email_opens_90d,
        cast(email_clicks_90d as integer) as email_clicks_90d,
        cast(web_sessions_30d as integer) as web_sessions_30d,
        cast(web_sessions_90d as integer) as web_sessions_90d
    from scored
)

select * from final
