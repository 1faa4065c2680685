{#-
    Support tickets per profile still waiting on us: opened by var('as_of') and not in a
    final status (solved, closed). The generator's statuses are open, pending, solved and
    closed; a ticket with no status counts as open. Status is the ticket's current one
    (the source keeps no status history). One row per profile with a ticket.
-#}
{%- set as_of = "cast('" ~ var('as_of') ~ "' as timestamp)" -%}

{{ cdp.per_profile_incremental() }}

with

profile_events as (
    select * from {{ ref('profile_events') }}
),

tickets as (
    select
        profile_id,
        coalesce(status, 'open') as status
    from profile_events
    where source = 'support'
        and occurred_at <= {{ as_of }}
        and {{ cdp.is_affected_profile('profile_id') }}
),

final as (
    select
        profile_id,
        cast(sum(case when status not in ('solved', 'closed') then 1 else 0 end) as integer) as open_support_tickets
    from tickets
    group by profile_id
)

select * from final
